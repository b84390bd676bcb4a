// Errors as values, for the whole project: the IO-free core, the extension,
// the safekeeper daemon, the tools and the tests.
//
// Contract: `Status` is either success (`Status()`, also spelled
// `Status::success()`) or an error that carries a kind, a human-readable
// message and, for failed system calls, the errno. `ok()` always TESTS for
// success; it never constructs. `Result<T>` holds either a T or a non-ok
// Status. Both are [[nodiscard]]: a caller that really means to drop one says
// so with a `(void)` cast and a comment. Nothing here throws; accessing
// value() of an error Result is a programming error (assert in debug builds;
// callers check ok() first). Plain values, no shared state; thread-safety as
// for std::string / T.
#pragma once

#include <cassert>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

namespace wp {

enum class StatusKind {
    kOk,
    kError,         // unclassified (Status::error(message))
    kIoError,       // a system call failed (errno set)
    kCorrupt,       // on-disk data failed a check (magic, CRC, version)
    kInvalidInput,  // a caller or peer passed something invalid
    kNotFound,      // a file or object does not exist
    kCrashed,       // fault injection: the simulated machine has crashed
};

class [[nodiscard]] Status {
  public:
    Status() = default;  // success
    static Status success() { return Status(); }
    // An unclassified error (kind kError). An empty message becomes
    // "unspecified error", so an error never reads as blank.
    static Status error(std::string message) {
        return error(StatusKind::kError, std::move(message));
    }
    // An error of `kind` (not kOk: kOk is turned into kError).
    static Status error(StatusKind kind, std::string message, int sys_errno = 0) {
        Status s;
        s.kind_ = kind == StatusKind::kOk ? StatusKind::kError : kind;
        s.message_ = message.empty() ? std::string("unspecified error") : std::move(message);
        s.errno_ = sys_errno;
        return s;
    }
    // "<context>: <strerror(err)>" with kind kIoError (kNotFound for ENOENT).
    static Status from_errno(const std::string& context, int err) {
        return error(err == ENOENT ? StatusKind::kNotFound : StatusKind::kIoError,
                     context + ": " + std::strerror(err), err);
    }
    static Status corrupt(std::string message) {
        return error(StatusKind::kCorrupt, std::move(message));
    }
    static Status invalid(std::string message) {
        return error(StatusKind::kInvalidInput, std::move(message));
    }

    bool ok() const { return kind_ == StatusKind::kOk; }
    explicit operator bool() const { return ok(); }
    StatusKind kind() const { return kind_; }
    // The errno of a failed system call; 0 when there is none.
    int sys_errno() const { return errno_; }
    // Empty string when ok.
    const std::string& message() const { return message_; }
    // "ok", or the message.
    std::string to_string() const { return ok() ? std::string("ok") : message_; }

    // Adds context in front of the message: "ctx: message". Success stays
    // success.
    Status with_context(const std::string& ctx) const {
        if (ok()) return *this;
        Status s = *this;
        s.message_ = ctx + ": " + message_;
        return s;
    }

  private:
    StatusKind kind_ = StatusKind::kOk;
    std::string message_;
    int errno_ = 0;
};

template <typename T>
class [[nodiscard]] Result {
  public:
    Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit success
    // Must be an error; an ok Status is a programming error (assert), turned
    // into an error in release builds rather than an empty value.
    Result(Status error) : error_(std::move(error)) {  // NOLINT: implicit failure
        assert(!error_.ok());
        if (error_.ok()) error_ = Status::error("Result built from ok Status");
    }
    static Result error(std::string message) { return Result(Status::error(std::move(message))); }

    bool ok() const { return value_.has_value(); }
    explicit operator bool() const { return ok(); }
    // Empty string when ok.
    const std::string& message() const { return error_.message(); }
    // Success when ok.
    const Status& status() const { return error_; }

    T& value() & {
        assert(ok());
        return *value_;
    }
    const T& value() const& {
        assert(ok());
        return *value_;
    }
    T&& value() && {
        assert(ok());
        return std::move(*value_);
    }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }

  private:
    std::optional<T> value_;
    Status error_;
};

}  // namespace wp

// Propagates a non-ok Status out of the current function.
#define WP_RETURN_IF_ERROR(expr)                 \
    do {                                         \
        ::wp::Status wp_status_ = (expr);        \
        if (!wp_status_.ok()) return wp_status_; \
    } while (0)
