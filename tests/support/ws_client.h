// A small synchronous WebSocket client (Boost.Beast) for integration tests.
//
// Every read has a timeout so that a test fails instead of hanging. Frames are
// text frames carrying JSON objects.
//
// Thread-safety: one thread uses a WsClient.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace ticketaid::testing {

struct WsHandshakeResult {
  bool upgraded = false;
  int http_status = 0;  // the status of a refused upgrade (e.g. 400)
  std::string body;     // the body of a refused upgrade
  std::string error;    // a transport error, if any
};

class WsClient {
 public:
  WsClient();
  ~WsClient();
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  // Connects to ws://127.0.0.1:port + target, with extra request headers.
  WsHandshakeResult connect(int port, const std::string& target,
                            const std::map<std::string, std::string>& headers = {});

  bool send_text(const std::string& text);
  bool send_json(const nlohmann::json& message) { return send_text(message.dump()); }

  // The next text frame parsed as JSON; nullopt on timeout, close or error (see
  // close_code()/error()).
  std::optional<nlohmann::json> read_json(
      std::chrono::milliseconds timeout = std::chrono::milliseconds(10'000));
  // Reads frames until one has "type" == type (returning it) or the timeout passes;
  // frames passed over are appended to *skipped when given.
  std::optional<nlohmann::json> read_until_type(
      const std::string& type,
      std::chrono::milliseconds timeout = std::chrono::milliseconds(10'000),
      std::vector<nlohmann::json>* skipped = nullptr);

  void close();  // a clean close handshake (1000)
  void drop();   // closes the TCP connection without a close handshake
  bool is_open() const;
  std::optional<int> close_code() const;  // set once the server closed the socket
  std::string error() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ticketaid::testing
