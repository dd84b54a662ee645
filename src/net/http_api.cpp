#include "net/http_api.h"

#include <charconv>

#include "util/metrics.h"

namespace ticketaid {

using nlohmann::json;

HttpReply json_reply(int status, const json& body) {
  return {
      status, "application/json", body.dump(-1, ' ', false, json::error_handler_t::replace), {}};
}

HttpReply no_content() {
  return {204, "application/json", "", {}};
}

HttpReply error_reply(int http_status, ErrorCode code, std::string message) {
  metrics().error(code);
  return json_reply(http_status,
                    {{"error", {{"code", to_string(code)}, {"message", std::move(message)}}}});
}

HttpReply error_reply(const Status& status) {
  return error_reply(http_status(status.code()), status.code(), status.message());
}

namespace {

std::optional<int64_t> parse_int(const std::string& text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Result<Page> parse_page(const HttpRequest& request) {
  Page page;
  if (auto it = request.query.find("limit"); it != request.query.end()) {
    auto limit = parse_int(it->second);
    if (!limit || *limit < 1 || *limit > 500) {
      return Status::error(ErrorCode::bad_request, "limit must be an integer from 1 to 500");
    }
    page.limit = static_cast<int>(*limit);
  }
  if (auto it = request.query.find("offset"); it != request.query.end()) {
    auto offset = parse_int(it->second);
    if (!offset || *offset < 0) {
      return Status::error(ErrorCode::bad_request, "offset must be an integer of 0 or more");
    }
    page.offset = *offset;
  }
  return page;
}

json page_json(json items, int64_t total, const Page& page) {
  return {{"items", std::move(items)},
          {"total", total},
          {"limit", page.limit},
          {"offset", page.offset}};
}

Result<json> parse_json_object(std::string_view body) {
  auto parsed = json::parse(body, nullptr, false);
  if (parsed.is_discarded())
    return Status::error(ErrorCode::bad_request, "the body is not valid JSON");
  if (!parsed.is_object()) {
    return Status::error(ErrorCode::bad_request, "the body must be a JSON object");
  }
  return parsed;
}

std::optional<std::string> url_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      int hi = hex_value(text[i + 1]);
      int lo = hex_value(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::map<std::string, std::string> parse_query(std::string_view query) {
  std::map<std::string, std::string> out;
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    auto key = url_decode(pair.substr(0, eq), true);
    auto value = eq == std::string_view::npos ? std::optional<std::string>("")
                                              : url_decode(pair.substr(eq + 1), true);
    if (key && value) out.emplace(std::move(*key), std::move(*value));
  }
  return out;
}

}  // namespace ticketaid
