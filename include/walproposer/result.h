// Errors as values for the IO-free consensus core.
//
// Contract: `Status` is either ok or carries a human-readable error message;
// `Result<T>` is either a T or an error message. No exceptions are thrown by
// these types (accessing value() of an error Result is a programming error and
// aborts via assert in debug builds; callers must check ok() first).
// Value types; thread-safety as for std::string / T.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace wp {

class Status {
public:
    Status() = default;  // ok
    static Status ok_status() { return Status(); }
    static Status error(std::string message) {
        Status s;
        s.error_ = std::move(message);
        if (s.error_->empty()) *s.error_ = "unspecified error";
        return s;
    }
    bool ok() const { return !error_.has_value(); }
    explicit operator bool() const { return ok(); }
    // Empty string when ok.
    const std::string& message() const {
        static const std::string kEmpty;
        return error_ ? *error_ : kEmpty;
    }

private:
    std::optional<std::string> error_;
};

template <typename T>
class Result {
public:
    Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit success
    Result(Status error) : error_(std::move(error)) {  // NOLINT: implicit failure
        assert(!error_.ok());
        if (error_.ok()) error_ = Status::error("Result built from ok Status");
    }
    static Result error(std::string message) { return Result(Status::error(std::move(message))); }

    bool ok() const { return value_.has_value(); }
    explicit operator bool() const { return ok(); }
    const std::string& message() const { return error_.message(); }
    const Status& status() const { return error_; }

    T& value() & { assert(ok()); return *value_; }
    const T& value() const& { assert(ok()); return *value_; }
    T&& value() && { assert(ok()); return std::move(*value_); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

private:
    std::optional<T> value_;
    Status error_;
};

}  // namespace wp
