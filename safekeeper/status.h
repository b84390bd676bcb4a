// Errors as values for the safekeeper's IO paths.
//
// Contract: Status is a cheap value (ok, or a message plus an optional errno
// and a kind); Result<T> holds either a T or a non-ok Status. Neither throws.
// Thread-safety: plain values, no shared state.
#pragma once

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

namespace wp::sk {

enum class StatusKind {
    kOk,
    kIoError,        // a system call failed (errno set)
    kCorrupt,        // on-disk data failed a check (magic, CRC, version)
    kInvalidInput,   // a caller or peer passed something invalid
    kNotFound,       // a file or object does not exist
    kCrashed,        // fault injection: the simulated machine has crashed
};

class [[nodiscard]] Status {
public:
    Status() = default;
    static Status ok() { return Status(); }
    static Status error(StatusKind kind, std::string message, int sys_errno = 0) {
        Status s;
        s.kind_ = kind;
        s.message_ = std::move(message);
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

    bool is_ok() const { return kind_ == StatusKind::kOk; }
    explicit operator bool() const { return is_ok(); }
    StatusKind kind() const { return kind_; }
    int sys_errno() const { return errno_; }
    const std::string& message() const { return message_; }
    std::string to_string() const { return is_ok() ? std::string("ok") : message_; }

    // Adds context in front of the message: "ctx: message".
    Status with_context(const std::string& ctx) const {
        if (is_ok()) return *this;
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
    Result(T value) : value_(std::move(value)) {}          // NOLINT: implicit on purpose
    Result(Status status) : status_(std::move(status)) {}  // NOLINT: must be an error
    bool is_ok() const { return value_.has_value(); }
    explicit operator bool() const { return is_ok(); }
    const Status& status() const { return status_; }
    T& value() & { return *value_; }
    const T& value() const& { return *value_; }
    T&& value() && { return std::move(*value_); }
    T* operator->() { return &*value_; }
    const T* operator->() const { return &*value_; }
    T& operator*() { return *value_; }
    const T& operator*() const { return *value_; }

private:
    std::optional<T> value_;
    Status status_;
};

}  // namespace wp::sk

// Propagates a non-ok Status out of the current function.
#define WP_RETURN_IF_ERROR(expr)                   \
    do {                                           \
        ::wp::sk::Status wp_status_ = (expr);      \
        if (!wp_status_.is_ok()) return wp_status_; \
    } while (0)
