// The GCRA step and the in-process limiter (an LRU of keys under one mutex).
#include "limits/rate_limiter.h"

#include <algorithm>
#include <list>
#include <mutex>
#include <unordered_map>

namespace ticketaid {
namespace {

class LocalRateLimiter final : public RateLimiter {
 public:
  LocalRateLimiter(const Clock& clock, std::size_t max_keys)
      : clock_(clock), max_keys_(std::max<std::size_t>(max_keys, 1)) {}

  void take(const std::string& key, int per_minute,
            std::function<void(RateDecision)> done) override {
    done(decide(key, per_minute));
  }

  RateLimiterHealth health() const override { return {"local", false, "in this process"}; }

 private:
  struct Entry {
    std::int64_t tat_us = 0;
    std::list<std::string>::iterator lru;  // position in lru_
  };

  RateDecision decide(const std::string& key, int per_minute) {
    const std::int64_t now_us =
        std::chrono::duration_cast<std::chrono::microseconds>(clock_.now().time_since_epoch())
            .count();
    std::lock_guard lock(mutex_);
    auto it = entries_.find(key);
    if (it == entries_.end()) {
      if (entries_.size() >= max_keys_) {
        entries_.erase(lru_.back());
        lru_.pop_back();
      }
      lru_.push_front(key);
      it = entries_.emplace(key, Entry{0, lru_.begin()}).first;
    } else {
      lru_.splice(lru_.begin(), lru_, it->second.lru);
    }
    const GcraStep step = gcra(it->second.tat_us, now_us, per_minute);
    it->second.tat_us = step.new_tat_us;
    return step.decision;
  }

  const Clock& clock_;
  const std::size_t max_keys_;
  std::mutex mutex_;
  std::list<std::string> lru_;  // most recently used first
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace

GcraStep gcra(std::int64_t tat_us, std::int64_t now_us, int per_minute) {
  constexpr std::int64_t kMinuteUs = 60'000'000;
  const std::int64_t n = std::max(per_minute, 1);
  const std::int64_t interval = kMinuteUs / n;        // one token every 60/N seconds
  const std::int64_t tolerance = interval * (n - 1);  // a burst of N from a full bucket
  const std::int64_t tat = std::max(tat_us, now_us);
  if (tat - now_us > tolerance) {
    const std::int64_t wait_us = tat - tolerance - now_us;
    return {{false, (wait_us + 999) / 1000}, tat_us};
  }
  return {{true, 0}, tat + interval};
}

std::unique_ptr<RateLimiter> make_local_rate_limiter(const Clock& clock, std::size_t max_keys) {
  return std::make_unique<LocalRateLimiter>(clock, max_keys);
}

}  // namespace ticketaid
