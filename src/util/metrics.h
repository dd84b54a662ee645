// Process-wide counters, gauges and histograms, rendered in the Prometheus text
// exposition format (version 0.0.4) for GET /metrics.
//
// Every metric is declared once, as a field of Metrics; metrics() is the process's
// one instance. Updating is lock-free (relaxed atomics) and may happen on any
// thread, on hot paths; rendering reads a snapshot that is consistent per metric.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>
#include "util/mirror_status.h"

#include "util/status.h"

namespace ticketaid {

class Counter {
 public:
  void add(int64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

class Gauge {
 public:
  void set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void add(int64_t n) { value_.fetch_add(n, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// A histogram with fixed upper bounds (seconds, tokens per second, ...).
class Histogram {
 public:
  explicit Histogram(std::initializer_list<double> bounds);
  void observe(double value);
  struct Snapshot {
    std::vector<double> bounds;
    std::vector<int64_t> cumulative;  // per bound, then +Inf
    double sum = 0;
    int64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  std::vector<std::atomic<int64_t>> buckets_;  // one per bound, plus +Inf
  std::atomic<int64_t> count_{0};
  std::atomic<double> sum_{0};
};

// How a generation ended, for ticketaid_generations_total{outcome}.
enum class Outcome { complete, failed, timeout, cancelled, busy, interrupted };
inline constexpr std::size_t kOutcomes = 6;
std::string_view to_string(Outcome outcome);

struct Metrics {
  // Connections (HTTP and WebSocket) and client messages.
  Counter connections_total;
  Gauge connections_current;
  Gauge connections_peak;
  Counter messages_total;  // WebSocket messages and POSTs that ask for model work

  // Ticket answers.
  Counter cache_hits;
  Counter cache_misses;
  std::array<Counter, kOutcomes> generations;  // by Outcome
  Counter response_tokens;                     // stream chunks' tokens forwarded
  Counter prompt_tokens;
  Histogram time_to_first_token{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
  Histogram tokens_per_second{1, 5, 10, 20, 40, 80, 160, 320, 640};

  // Errors sent to clients, by code.
  std::array<Counter, static_cast<std::size_t>(ErrorCode::internal) + 1> errors;

  // Set by the health monitor.
  Gauge ollama_up;
  Gauge store_up;

  void connection_opened();
  void connection_closed() { connections_current.add(-1); }
  void error(ErrorCode code) { errors[static_cast<std::size_t>(code)].add(); }
  void generation_ended(Outcome outcome) { generations[static_cast<std::size_t>(outcome)].add(); }
};

Metrics& metrics();

// Values known only when rendering (queue depth, running generations).
struct LiveGauges {
  int64_t queue_depth = 0;
  int64_t active_generations = 0;
  int64_t websockets_open = 0;         // counted against limits.max_connections
  bool redis_limiter = false;          // rate limits are kept in Redis
  bool rate_limiter_degraded = false;  // ... and Redis is unreachable: the fallback decides
  MirrorStatus mirror;                 // the MongoDB mirror (enabled = false while off)
};

std::string render_prometheus(const Metrics& m, const LiveGauges& live);

}  // namespace ticketaid
