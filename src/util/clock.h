// Time: a Clock seam so that the engine can be tested without sleeping, and the
// ISO 8601 rendering used on the wire.
//
// Thread-safety: a Clock may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace ticketaid {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::steady_clock::time_point now() const = 0;  // for intervals
  virtual int64_t unix_ms() const = 0;                            // for timestamps
};

// The real clocks.
Clock& system_clock();

// "2026-11-23T10:30:00.123Z" for a unix-epoch millisecond time.
std::string iso8601_utc(int64_t unix_ms);

}  // namespace ticketaid
