// Open WebSocket connections, counted in total and per user, for
// limits.max_connections (HTTP 503 before the upgrade) and
// limits.max_connections_per_user (close 4008).
//
// Thread-safety: every method may be called from any thread. A Lease may be
// released (destroyed) on any thread; the registry must outlive its leases.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace ticketaid {

class ConnectionRegistry {
 public:
  // A connection's place; destroying the last copy frees it.
  using Lease = std::shared_ptr<const void>;

  enum class Refusal { none, total, per_user };
  struct Admission {
    Refusal refusal = Refusal::none;
    Lease lease;  // set when admitted
  };

  // Admits one more connection of `user` when fewer than `max_total` are open in all
  // and fewer than `max_per_user` for the user.
  Admission admit(const std::string& user, int max_total, int max_per_user);

  std::size_t total() const;
  std::size_t of_user(const std::string& user) const;

 private:
  void release(const std::string& user);

  mutable std::mutex mutex_;
  std::size_t total_ = 0;
  std::unordered_map<std::string, int> per_user_;  // only users with open connections
};

}  // namespace ticketaid
