#include "limits/connection_registry.h"

namespace ticketaid {

ConnectionRegistry::Admission ConnectionRegistry::admit(const std::string& user, int max_total,
                                                        int max_per_user) {
  std::lock_guard lock(mutex_);
  if (total_ >= static_cast<std::size_t>(max_total)) return {Refusal::total, nullptr};
  auto it = per_user_.find(user);
  if (it != per_user_.end() && it->second >= max_per_user) return {Refusal::per_user, nullptr};
  ++total_;
  if (it == per_user_.end()) {
    per_user_.emplace(user, 1);
  } else {
    ++it->second;
  }
  // The lease holds no data: its deleter frees the place.
  Lease lease(static_cast<const void*>(this), [this, user](const void*) { release(user); });
  return {Refusal::none, std::move(lease)};
}

void ConnectionRegistry::release(const std::string& user) {
  std::lock_guard lock(mutex_);
  --total_;
  auto it = per_user_.find(user);
  if (it != per_user_.end() && --it->second <= 0) per_user_.erase(it);
}

std::size_t ConnectionRegistry::total() const {
  std::lock_guard lock(mutex_);
  return total_;
}

std::size_t ConnectionRegistry::of_user(const std::string& user) const {
  std::lock_guard lock(mutex_);
  auto it = per_user_.find(user);
  return it == per_user_.end() ? 0 : static_cast<std::size_t>(it->second);
}

}  // namespace ticketaid
