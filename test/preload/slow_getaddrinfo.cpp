// TEST ONLY: an LD_PRELOAD library that makes chosen host names resolve
// slowly, or not at all, so tests can show that the walproposer worker's
// loop never waits for name resolution. Never installed.
//
// A name ending in ".wp-test" is answered here; every other name goes to the
// C library's getaddrinfo. The name's first label says what happens:
//   slow<MS>-ok.wp-test     sleeps MS milliseconds, then resolves to 127.0.0.1
//   slow<MS>-fail.wp-test   sleeps MS milliseconds, then fails (EAI_NONAME)
// e.g. "slow1500-ok.wp-test" or "slow600000-fail.wp-test".
#include <dlfcn.h>
#include <netdb.h>
#include <time.h>

#include <cstdlib>
#include <cstring>

namespace {

using GetaddrinfoFunction = int (*)(const char*, const char*, const addrinfo*, addrinfo**);

bool ends_with(const char* text, const char* suffix) {
    const std::size_t n = std::strlen(text), m = std::strlen(suffix);
    return n >= m && std::strcmp(text + n - m, suffix) == 0;
}

}  // namespace

extern "C" int getaddrinfo(const char* node, const char* service, const addrinfo* hints,
                           addrinfo** result) {
    static GetaddrinfoFunction next =
        reinterpret_cast<GetaddrinfoFunction>(dlsym(RTLD_NEXT, "getaddrinfo"));
    if (node == nullptr || !ends_with(node, ".wp-test") || std::strncmp(node, "slow", 4) != 0)
        return next(node, service, hints, result);
    char* rest = nullptr;
    const long ms = std::strtol(node + 4, &rest, 10);
    timespec delay{ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&delay, &delay) != 0) {
    }
    if (std::strncmp(rest, "-ok.", 4) == 0) return next("127.0.0.1", service, hints, result);
    return EAI_NONAME;
}
