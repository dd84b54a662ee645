// A Clock that moves only when the test moves it, so that expiry, timeouts and
// intervals are tested without sleeping.
//
// It starts at the real wall-clock time (the SQLite store stamps rows with the real
// clock, so the two agree until the test advances this one) and an arbitrary steady
// time; advance() moves both by the same amount.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "util/clock.h"

namespace ticketaid::testing {

class ManualClock final : public Clock {
 public:
  ManualClock() : unix_ms_(system_clock().unix_ms()) {}

  std::chrono::steady_clock::time_point now() const override {
    return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(steady_ns_.load()));
  }
  int64_t unix_ms() const override { return unix_ms_.load(); }

  void advance(std::chrono::milliseconds by) {
    steady_ns_ += std::chrono::duration_cast<std::chrono::nanoseconds>(by).count();
    unix_ms_ += by.count();
  }
  void set_unix_ms(int64_t unix_ms) { unix_ms_ = unix_ms; }

 private:
  std::atomic<int64_t> steady_ns_{1'000'000'000};
  std::atomic<int64_t> unix_ms_;
};

}  // namespace ticketaid::testing
