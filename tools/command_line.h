// The option syntax the command-line tools share: "--name VALUE",
// "--name=VALUE" and "-x VALUE", read one argument at a time.
//
// Contract: header-only, no state beyond the cursor; on a missing value it
// calls the tool's usage_error, which prints and exits (status 2).
#pragma once

#include <cstdio>
#include <string>

#include "walproposer/version.h"

namespace wp::tools {

class ArgCursor {
  public:
    using UsageError = void (*)(const std::string& message);

    ArgCursor(int argc, char** argv, UsageError usage_error)
        : argc_(argc), argv_(argv), usage_error_(usage_error) {}

    // Moves to the next argument; false after the last.
    bool next() {
        if (++i_ >= argc_) return false;
        arg_ = argv_[i_];
        return true;
    }
    const std::string& arg() const { return arg_; }

    // The argument is option long_name (alone or as long_name=VALUE) or
    // short_name.
    bool is(const char* long_name, const char* short_name = nullptr) const {
        const std::string name = long_name;
        return arg_ == name || arg_.rfind(name + "=", 0) == 0 || (short_name && arg_ == short_name);
    }
    // --help (-?, -h): calls print_help; --version (-V): prints "PROGRAM
    // VERSION". True when the argument was one of them.
    bool handle_help_or_version(void (*print_help)(), const char* program) const {
        if (arg_ == "--help" || arg_ == "-?" || arg_ == "-h") {
            print_help();
            return true;
        }
        if (arg_ == "--version" || arg_ == "-V") {
            std::printf("%s %s\n", program, wp::kVersion);
            return true;
        }
        return false;
    }

    // The option's value: after '=' or the next argument.
    std::string value(const char* name) {
        const std::string prefix = std::string(name) + "=";
        if (arg_.rfind(prefix, 0) == 0) return arg_.substr(prefix.size());
        if (i_ + 1 >= argc_) usage_error_(std::string("option ") + name + " needs a value");
        return argv_[++i_];
    }

  private:
    int argc_;
    char** argv_;
    UsageError usage_error_;
    int i_ = 0;
    std::string arg_;
};

}  // namespace wp::tools
