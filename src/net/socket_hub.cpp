#include "net/socket_hub.h"

#include <vector>

namespace ticketaid {

std::uint64_t SocketHub::add(std::weak_ptr<ClosableSocket> socket) {
  std::lock_guard lock(mutex_);
  sockets_.emplace(++next_id_, std::move(socket));
  return next_id_;
}

void SocketHub::remove(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  sockets_.erase(id);
}

std::size_t SocketHub::close_all() {
  std::vector<std::shared_ptr<ClosableSocket>> open;
  {
    std::lock_guard lock(mutex_);
    for (auto& [id, weak] : sockets_) {
      if (auto socket = weak.lock()) open.push_back(std::move(socket));
    }
  }
  for (auto& socket : open) {
    socket->going_away();
  }
  return open.size();
}

std::size_t SocketHub::size() const {
  std::lock_guard lock(mutex_);
  return sockets_.size();
}

}  // namespace ticketaid
