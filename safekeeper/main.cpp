// Placeholder replaced by the safekeeper daemon issue.
#include <cstdio>
#include <cstring>

#include "walproposer/version.h"

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--version") == 0) {
            std::printf("safekeeper (walproposer) %s\n", wp::kVersion);
            return 0;
        }
        if (std::strcmp(argv[i], "--help") == 0) {
            std::printf("Usage: safekeeper -D DIR --id N\n");
            return 0;
        }
    }
    std::fprintf(stderr, "safekeeper: not implemented yet\n");
    return 1;
}
