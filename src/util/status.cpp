#include "util/status.h"

namespace ticketaid {

std::string_view to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::ok:
      return "ok";
    case ErrorCode::bad_request:
      return "bad_request";
    case ErrorCode::unauthorized:
      return "unauthorized";
    case ErrorCode::forbidden:
      return "forbidden";
    case ErrorCode::not_found:
      return "not_found";
    case ErrorCode::session_limit:
      return "session_limit";
    case ErrorCode::session_full:
      return "session_full";
    case ErrorCode::too_large:
      return "too_large";
    case ErrorCode::rate_limited:
      return "rate_limited";
    case ErrorCode::ollama_unavailable:
      return "ollama_unavailable";
    case ErrorCode::model_not_found:
      return "model_not_found";
    case ErrorCode::busy:
      return "busy";
    case ErrorCode::timeout:
      return "timeout";
    case ErrorCode::cancelled:
      return "cancelled";
    case ErrorCode::internal:
      return "internal";
  }
  return "internal";
}

std::optional<ErrorCode> parse_error_code(std::string_view name) {
  for (int i = 0; i <= static_cast<int>(ErrorCode::internal); ++i) {
    auto code = static_cast<ErrorCode>(i);
    if (to_string(code) == name) return code;
  }
  return std::nullopt;
}

int http_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::ok:
      return 200;
    case ErrorCode::bad_request:
      return 400;
    case ErrorCode::unauthorized:
      return 401;
    case ErrorCode::forbidden:
      return 403;
    case ErrorCode::not_found:
      return 404;
    case ErrorCode::session_limit:
    case ErrorCode::session_full:
      return 409;
    case ErrorCode::too_large:
      return 413;
    case ErrorCode::rate_limited:
      return 429;
    case ErrorCode::ollama_unavailable:
    case ErrorCode::model_not_found:
      return 502;
    case ErrorCode::busy:
      return 503;
    case ErrorCode::timeout:
      return 504;
    case ErrorCode::cancelled:
      return 499;
    case ErrorCode::internal:
      return 500;
  }
  return 500;
}

std::string Status::to_string() const {
  std::string out(ticketaid::to_string(code_));
  if (!message_.empty()) out += ": " + message_;
  return out;
}

}  // namespace ticketaid
