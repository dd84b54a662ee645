// Merges tokens that arrive close together into fewer, larger stream chunks.
//
// With interval 0 every token is its own chunk. Otherwise a token is held while
// less than `interval` has passed since the last chunk was cut, up to max_bytes.
// The concatenation of the chunks is always exactly the concatenation of the tokens.
// A pending tail is cut by due() (called on a timer, once the interval has passed)
// or flush() (when the reply ends).
//
// Thread-safety: not thread-safe; the generation serialises its callers.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace ticketaid {

class Coalescer {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  Coalescer(std::chrono::milliseconds interval, std::size_t max_bytes)
      : interval_(interval), max_bytes_(max_bytes == 0 ? 1 : max_bytes) {}

  // Adds a token; returns a chunk to send now, if one is due.
  std::optional<std::string> add(std::string_view token, TimePoint now) {
    pending_.append(token);
    if (interval_.count() == 0 || pending_.size() >= max_bytes_ || !cut_once_ ||
        now - last_cut_ >= interval_) {
      return cut(now);
    }
    return std::nullopt;
  }

  // The pending text, if the interval has passed since the last cut.
  std::optional<std::string> due(TimePoint now) {
    if (pending_.empty() || now - last_cut_ < interval_) return std::nullopt;
    return cut(now);
  }

  // The pending tail, if any.
  std::optional<std::string> flush(TimePoint now) {
    if (pending_.empty()) return std::nullopt;
    return cut(now);
  }

 private:
  std::string cut(TimePoint now) {
    cut_once_ = true;
    last_cut_ = now;
    std::string chunk;
    chunk.swap(pending_);
    return chunk;
  }

  std::chrono::milliseconds interval_;
  std::size_t max_bytes_;
  std::string pending_;
  TimePoint last_cut_{};
  bool cut_once_ = false;
};

}  // namespace ticketaid
