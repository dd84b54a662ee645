#include "core/single_flight.h"

namespace ticketaid {

SingleFlight::Found SingleFlight::join_or_defer(const std::string& key, const std::string& prompt,
                                                bool join_any,
                                                const std::shared_ptr<ReplySink>& sink,
                                                std::function<void()> retry) {
  std::lock_guard lock(mutex_);
  auto it = running_.find(key);
  if (it == running_.end()) return Found::none;
  auto& running = it->second;
  if ((running->prompt() == prompt || join_any) && running->attach(sink)) return Found::joined;
  // Another prompt, or a reply being stopped or just ended (it refused the sink): ask
  // again once it has ended (defer runs `retry` at once if it has).
  running->defer(std::move(retry));
  return Found::deferred;
}

std::shared_ptr<Generation> SingleFlight::register_new(
    const std::string& key, const std::function<bool()>& served,
    const std::function<std::shared_ptr<Generation>()>& make,
    const std::shared_ptr<ReplySink>& sink) {
  std::lock_guard lock(mutex_);
  if (running_.count(key)) return nullptr;
  if (served && served()) return nullptr;
  auto generation = make();
  running_.emplace(key, generation);
  generation->attach(sink);
  return generation;
}

void SingleFlight::unregister(Generation& generation) {
  std::lock_guard lock(mutex_);
  auto it = running_.find(generation.key());
  if (it != running_.end() && it->second.get() == &generation) running_.erase(it);
}

std::size_t SingleFlight::size() const {
  std::lock_guard lock(mutex_);
  return running_.size();
}

void SingleFlight::stop_all(const Status& why) {
  std::vector<std::shared_ptr<Generation>> running;
  {
    std::lock_guard lock(mutex_);
    for (auto& [key, generation] : running_)
      running.push_back(generation);
  }
  for (auto& generation : running)
    generation->stop(why);
}

}  // namespace ticketaid
