// Errors as values between modules.
//
// Status carries one of the product's error codes (SPEC §5) and a human message;
// Result<T> is a value or a Status. Both are plain values: copy them freely, share
// them between threads only as you would any other value.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace ticketaid {

enum class ErrorCode {
  ok,
  bad_request,
  unauthorized,
  forbidden,
  not_found,
  session_limit,
  session_full,
  too_large,
  rate_limited,
  ollama_unavailable,
  model_not_found,
  busy,
  timeout,
  cancelled,
  internal,
};

// The wire name of a code, as in SPEC §5 ("bad_request", ...).
std::string_view to_string(ErrorCode code);
// The code named by its wire name; nullopt for an unknown name.
std::optional<ErrorCode> parse_error_code(std::string_view name);
// The HTTP status of a code (cancelled, which has none, maps to 499).
int http_status(ErrorCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status ok() { return Status(); }
  static Status error(ErrorCode code, std::string message) {
    return Status(code, std::move(message));
  }

  bool is_ok() const { return code_ == ErrorCode::ok; }
  explicit operator bool() const { return is_ok(); }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "code: message", for logs.
  std::string to_string() const;

 private:
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}
  ErrorCode code_ = ErrorCode::ok;
  std::string message_;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT: implicit by design

  bool is_ok() const { return value_.has_value(); }
  explicit operator bool() const { return is_ok(); }
  // Precondition for value(): is_ok().
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  const Status& status() const { return status_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace ticketaid
