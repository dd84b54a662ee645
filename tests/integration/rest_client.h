// HTTP helpers for the integration tests of the REST and service endpoints: one
// request through cpp-httplib with its JSON body parsed, and an NDJSON response read
// line by line as it streams (httplib 0.11.4 has no streaming Post: Client::send with a
// content_receiver).
//
// Every call makes its own client with bounded timeouts, so that a test fails rather
// than hangs. Thread-safety: calls may run on any thread at the same time.
#pragma once

#include <httplib.h>

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ticketaid::testing {

struct HttpResult {
  int status = 0;     // 0: no response at all (see error)
  std::string error;  // a transport error, or a receiver that hung up ("Canceled")
  httplib::Headers headers;
  std::string body;
  nlohmann::json json;  // the body parsed; discarded (is_discarded()) when not JSON

  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
  std::string error_code() const {
    if (!json.is_object() || !json.contains("error") || !json["error"].is_object()) return "";
    return json["error"].value("code", "");
  }
  // For failure messages.
  std::string describe() const {
    return std::to_string(status) + " " + body + (error.empty() ? "" : " [" + error + "]");
  }
};

inline httplib::Client rest_client(int port) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(5, 0);
  client.set_read_timeout(30, 0);
  client.set_write_timeout(5, 0);
  return client;
}

// Sends one request and reads the whole response. A body is sent as application/json
// unless headers name another Content-Type. With a receiver, the response body goes to
// it (and not to HttpResult::body); returning false hangs up.
inline HttpResult http_call(int port, const std::string& method, const std::string& path,
                            const std::string& body = "", httplib::Headers headers = {},
                            httplib::ContentReceiverWithProgress receiver = nullptr) {
  auto client = rest_client(port);
  httplib::Request request;
  request.method = method;
  request.path = path;
  if (!body.empty() && headers.find("Content-Type") == headers.end()) {
    headers.emplace("Content-Type", "application/json");
  }
  request.headers = std::move(headers);
  request.body = body;
  request.content_receiver = std::move(receiver);
  httplib::Response response;
  httplib::Error error = httplib::Error::Success;
  HttpResult result;
  if (!client.send(request, response, error)) result.error = httplib::to_string(error);
  result.status = response.status > 0 ? response.status : 0;
  result.headers = response.headers;
  result.body = response.body;
  result.json = nlohmann::json::parse(result.body, nullptr, false);
  return result;
}

inline HttpResult http_get(int port, const std::string& path) {
  return http_call(port, "GET", path);
}

inline HttpResult http_post(int port, const std::string& path, const nlohmann::json& body) {
  return http_call(port, "POST", path, body.dump());
}

struct NdjsonResult {
  HttpResult http;                     // status and headers; body holds everything read
  std::vector<nlohmann::json> lines;   // every complete line, parsed
  std::vector<std::string> bad_lines;  // lines that were not JSON objects
};

// POSTs with Accept: application/x-ndjson and hands each line to on_line as it arrives
// (from the calling thread); on_line returning false hangs up.
inline NdjsonResult post_ndjson(int port, const std::string& path, const std::string& body,
                                std::function<bool(const nlohmann::json&)> on_line = nullptr) {
  NdjsonResult out;
  std::string pending;
  auto receiver = [&](const char* data, size_t size, uint64_t, uint64_t) {
    out.http.body.append(data, size);
    pending.append(data, size);
    for (auto newline = pending.find('\n'); newline != std::string::npos;
         newline = pending.find('\n')) {
      std::string line = pending.substr(0, newline);
      pending.erase(0, newline + 1);
      auto parsed = nlohmann::json::parse(line, nullptr, false);
      if (!parsed.is_object()) {
        out.bad_lines.push_back(line);
        continue;
      }
      out.lines.push_back(parsed);
      if (on_line && !on_line(parsed)) return false;
    }
    return true;
  };
  auto http = http_call(port, "POST", path, body, {{"Accept", "application/x-ndjson"}}, receiver);
  http.body = std::move(out.http.body);
  http.json = nlohmann::json::parse(http.body, nullptr, false);
  if (!pending.empty()) out.bad_lines.push_back(pending);  // a last line without '\n'
  out.http = std::move(http);
  return out;
}

}  // namespace ticketaid::testing
