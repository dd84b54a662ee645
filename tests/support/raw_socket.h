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

  // To 127.0.0.1. A receive_buffer > 0 sets SO_RCVBUF before connecting (so that the
  // window TCP offers matches it), for a peer that is never read to fill it quickly.
  bool connect(int port, int receive_buffer = 0);
  // Sends everything, or false when the peer closed or `timeout` passed.
  bool send_all(const std::string& bytes,
                std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    return send_partial(bytes, timeout) == bytes.size();
  }
  // Sends as much as goes within `timeout`; returns how many bytes were sent.
  std::size_t send_partial(const std::string& bytes, std::chrono::milliseconds timeout);
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
