// A plain TCP client for tests that must misbehave: send half a request, never read,
// never answer a ping. Speaks just enough WebSocket (RFC 6455) to upgrade and send
// masked text frames.
//
// Every call is bounded by a timeout. Thread-safety: one thread uses a RawSocket.
#pragma once

#include <chrono>
#include <map>
#include <string>

namespace ticketaid::testing {

class RawSocket {
 public:
  RawSocket() = default;
  ~RawSocket();
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;

  bool connect(int port);  // to 127.0.0.1
  // Small receive buffer, so that a peer that is not read fills it quickly.
  void shrink_receive_buffer();
  // Sends everything, or false when the peer closed or `timeout` passed.
  bool send_all(const std::string& bytes,
                std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Whatever arrives within `timeout` (empty on timeout or close; see closed()).
  std::string receive_some(std::chrono::milliseconds timeout);
  // Reads and discards until the peer closes; true when it did within `timeout`.
  bool wait_closed(std::chrono::milliseconds timeout);
  bool closed() const { return closed_; }

  // Sends an upgrade request for `target` and reads the response head; returns the
  // HTTP status (101 when upgraded), 0 on failure.
  int websocket_upgrade(const std::string& target,
                        const std::map<std::string, std::string>& headers = {});
  // One masked text frame (the mask key is zero, which RFC 6455 allows).
  static std::string text_frame(const std::string& payload);

 private:
  int fd_ = -1;
  bool closed_ = false;
};

}  // namespace ticketaid::testing
