#include "util/metrics.h"

#include <cmath>
#include <cstdio>

namespace ticketaid {

Histogram::Histogram(std::initializer_list<double> bounds)
    : bounds_(bounds), buckets_(bounds.size() + 1) {}

void Histogram::observe(double value) {
  std::size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i])
    ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  double sum = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(sum, sum + value, std::memory_order_relaxed)) {
  }
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.bounds = bounds_;
  int64_t running = 0;
  for (const auto& bucket : buckets_) {
    running += bucket.load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::string_view to_string(Outcome outcome) {
  switch (outcome) {
    case Outcome::complete:
      return "complete";
    case Outcome::failed:
      return "failed";
    case Outcome::timeout:
      return "timeout";
    case Outcome::cancelled:
      return "cancelled";
    case Outcome::busy:
      return "busy";
    case Outcome::interrupted:
      return "interrupted";
  }
  return "failed";
}

void Metrics::connection_opened() {
  connections_total.add();
  connections_current.add(1);
  int64_t now = connections_current.value();
  if (now > connections_peak.value()) connections_peak.set(now);
}

Metrics& metrics() {
  static Metrics instance;
  return instance;
}

namespace {

std::string number(double v) {
  if (std::isinf(v)) return "+Inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

class Writer {
 public:
  void header(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void sample(std::string_view name, std::string_view labels, double value) {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      out_ += labels;
      out_ += '}';
    }
    out_ += ' ';
    out_ += number(value);
    out_ += '\n';
  }
  void scalar(std::string_view name, std::string_view type, std::string_view help, double value) {
    header(name, type, help);
    sample(name, "", value);
  }
  void histogram(std::string_view name, std::string_view help, const Histogram& h) {
    header(name, "histogram", help);
    auto s = h.snapshot();
    const std::string bucket = std::string(name) + "_bucket";
    for (std::size_t i = 0; i < s.bounds.size(); ++i) {
      sample(bucket, "le=\"" + number(s.bounds[i]) + "\"", static_cast<double>(s.cumulative[i]));
    }
    sample(bucket, "le=\"+Inf\"", static_cast<double>(s.cumulative.back()));
    sample(std::string(name) + "_sum", "", s.sum);
    sample(std::string(name) + "_count", "", static_cast<double>(s.count));
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace

std::string render_prometheus(const Metrics& m, const LiveGauges& live) {
  Writer w;
  w.scalar("ticketaid_connections_total", "counter", "Connections accepted.",
           m.connections_total.value());
  w.scalar("ticketaid_connections", "gauge", "Connections open now.",
           m.connections_current.value());
  w.scalar("ticketaid_connections_peak", "gauge", "Most connections open at once.",
           m.connections_peak.value());
  w.scalar("ticketaid_messages_total", "counter", "Client messages and requests received.",
           m.messages_total.value());
  w.scalar("ticketaid_cache_hits_total", "counter", "Answers served from the store.",
           m.cache_hits.value());
  w.scalar("ticketaid_cache_misses_total", "counter", "Requests that needed a generation.",
           m.cache_misses.value());
  w.header("ticketaid_generations_total", "counter", "Generations ended, by outcome.");
  for (std::size_t i = 0; i < kOutcomes; ++i) {
    w.sample("ticketaid_generations_total",
             "outcome=\"" + std::string(to_string(static_cast<Outcome>(i))) + "\"",
             m.generations[i].value());
  }
  w.scalar("ticketaid_generations_active", "gauge", "Generations running or queued.",
           live.active_generations);
  w.scalar("ticketaid_queue_depth", "gauge", "Generations waiting for a free worker.",
           live.queue_depth);
  w.scalar("ticketaid_response_tokens_total", "counter", "Answer tokens received from Ollama.",
           m.response_tokens.value());
  w.scalar("ticketaid_prompt_tokens_total", "counter", "Prompt tokens Ollama reported.",
           m.prompt_tokens.value());
  w.histogram("ticketaid_time_to_first_token_seconds",
              "From the request to the first chunk of its answer.", m.time_to_first_token);
  w.histogram("ticketaid_tokens_per_second", "Token rate of each finished generation.",
              m.tokens_per_second);
  w.header("ticketaid_errors_total", "counter", "Errors sent to clients, by code.");
  for (std::size_t i = 1; i < m.errors.size(); ++i) {
    w.sample("ticketaid_errors_total",
             "code=\"" + std::string(to_string(static_cast<ErrorCode>(i))) + "\"",
             m.errors[i].value());
  }
  w.scalar("ticketaid_websockets", "gauge",
           "WebSockets open now (counted against limits.max_connections).", live.websockets_open);
  w.scalar("ticketaid_rate_limit_redis", "gauge", "1 when rate limits are kept in Redis.",
           live.redis_limiter ? 1 : 0);
  w.scalar("ticketaid_rate_limit_degraded", "gauge",
           "1 while Redis is unreachable and redis.on_failure decides.",
           live.rate_limiter_degraded ? 1 : 0);
  const MirrorStatus& mirror = live.mirror;
  w.scalar("ticketaid_mirror_enabled", "gauge", "1 when the MongoDB mirror is on (mongo.uri).",
           mirror.enabled ? 1 : 0);
  if (mirror.enabled) {
    w.scalar("ticketaid_mirror_outbox_depth", "gauge", "Outbox rows MongoDB has not received yet.",
             mirror.outbox_depth);
    w.scalar("ticketaid_mirror_lag_seconds", "gauge",
             "Age of the oldest outbox row; 0 when the outbox is empty.", mirror.lag_s);
    w.scalar("ticketaid_mirror_last_success_timestamp_seconds", "gauge",
             "When MongoDB last acknowledged a batch (unix seconds; 0: not since start).",
             mirror.last_success_ms ? static_cast<double>(*mirror.last_success_ms) / 1000.0 : 0.0);
    w.scalar("ticketaid_mirror_rows_sent_total", "counter",
             "Outbox rows MongoDB acknowledged since start.", mirror.rows_sent);
    w.scalar("ticketaid_mirror_overflow_total", "counter",
             "Items written to an _overflow collection since start (a document was full).",
             mirror.overflowed);
    w.header("ticketaid_mirror_errors_total", "counter",
             "Failed attempts to write to MongoDB, by kind.");
    for (const char* kind : {"unreachable", "timeout", "duplicate_key", "document_too_large",
                             "write_error", "command_error", "invalid", "store"}) {
      const auto it = mirror.errors.find(kind);
      w.sample("ticketaid_mirror_errors_total", std::string("kind=\"") + kind + "\"",
               it == mirror.errors.end() ? 0 : it->second);
    }
    w.header("ticketaid_mirror_read_through_total", "counter",
             "Local cache misses looked up in MongoDB, by result.");
    w.sample("ticketaid_mirror_read_through_total", "result=\"hit\"", mirror.read_through_hits);
    w.sample("ticketaid_mirror_read_through_total", "result=\"miss\"", mirror.read_through_misses);
  }
  w.scalar("ticketaid_ollama_up", "gauge", "1 when Ollama answered the last probe.",
           m.ollama_up.value());
  w.scalar("ticketaid_store_up", "gauge", "1 when the database answered the last probe.",
           m.store_up.value());
  return w.take();
}

}  // namespace ticketaid
