// The open WebSockets, so that a stopping daemon can close each with 1001 (going
// away) after its drain, instead of letting the connections drop.
//
// Thread-safety: every method may be called from any thread; close_all() calls
// going_away() outside the lock, and each socket then closes on its own strand.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace ticketaid {

class ClosableSocket {
 public:
  virtual ~ClosableSocket() = default;
  // Closes with 1001 soon, from any thread.
  virtual void going_away() = 0;
};

class SocketHub {
 public:
  // Returns the id to remove() the socket with.
  std::uint64_t add(std::weak_ptr<ClosableSocket> socket);
  void remove(std::uint64_t id);
  // Asks every open socket to close; returns how many were asked.
  std::size_t close_all();
  std::size_t size() const;

 private:
  mutable std::mutex mutex_;
  std::uint64_t next_id_ = 0;
  std::unordered_map<std::uint64_t, std::weak_ptr<ClosableSocket>> sockets_;
};

}  // namespace ticketaid
