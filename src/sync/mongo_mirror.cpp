// The syncer and the read-through lookup (see mongo_mirror.h).
#include "sync/mongo_mirror.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include <spdlog/spdlog.h>

#include "sync/mirror_documents.h"
#include "sync/mongo_connection.h"
#include "util/log_fields.h"

namespace ticketaid {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

constexpr auto kIdlePoll = 200ms;  // how often an empty outbox is looked at
constexpr auto kFirstBackoff = 500ms;
constexpr int kDuplicateKeyRetries = 5;

int64_t unix_ms_now() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

class ReadThrough final : public SharedAnswers {
 public:
  ReadThrough(mirror::MongoConnection& connection, const std::atomic<bool>& reachable,
              int timeout_ms, MirrorStatus& counters, std::mutex& mutex)
      : connection_(connection),
        reachable_(reachable),
        timeout_ms_(timeout_ms),
        counters_(counters),
        mutex_(mutex) {}

  std::optional<SharedAnswer> find(std::string_view ticket_id, std::string_view body) override {
    std::optional<SharedAnswer> found;
    // While the syncer cannot reach MongoDB, do not make each request wait for it.
    if (reachable_) found = lookup(ticket_id, body);
    std::lock_guard lock(mutex_);
    ++(found ? counters_.read_through_hits : counters_.read_through_misses);
    return found;
  }

 private:
  std::optional<SharedAnswer> lookup(std::string_view ticket_id, std::string_view body) {
    auto doc = connection_.find_by_id(mirror::kTickets, std::string(ticket_id), timeout_ms_);
    if (!doc.is_ok()) {
      spdlog::warn("mongo read-through for ticket {}: {}", ticket_id, doc.status().message());
      return std::nullopt;
    }
    if (!doc.value() || !doc.value()->contains("revisions")) return std::nullopt;
    const std::string hash = mirror::sha256_hex(body);
    const nlohmann::json* best = nullptr;
    for (const auto& [key, revision] : (*doc.value())["revisions"].items()) {
      if (!revision.is_object() || revision.value("status", "") != "complete") continue;
      if (revision.value("body_sha256", "") != hash || !revision.contains("answer")) continue;
      if (best == nullptr || revision.value("revision", 0) > best->value("revision", 0)) {
        best = &revision;
      }
    }
    if (best == nullptr || !(*best)["answer"].is_string()) return std::nullopt;
    SharedAnswer answer;
    answer.answer = (*best)["answer"].get<std::string>();
    answer.stats.model = best->value("model_used", "");
    auto number = [&](const char* name) -> std::optional<int64_t> {
      const auto it = best->find(name);
      if (it == best->end() || !it->is_number()) return std::nullopt;
      return it->get<int64_t>();
    };
    answer.stats.prompt_tokens = number("prompt_tokens");
    answer.stats.response_tokens = number("response_tokens");
    if (const auto it = best->find("execution_time"); it != best->end() && it->is_number()) {
      answer.stats.duration_ms = static_cast<int64_t>(it->get<double>() * 1000.0 + 0.5);
    }
    answer.stats.done_reason = best->value("done_reason", "");
    return answer;
  }

  mirror::MongoConnection& connection_;
  const std::atomic<bool>& reachable_;
  const int timeout_ms_;
  MirrorStatus& counters_;
  std::mutex& mutex_;
};

class MongoMirror final : public Mirror {
 public:
  MongoMirror(const Settings& settings, Outbox& outbox, std::string target,
              std::unique_ptr<mirror::MongoConnection> connection,
              std::unique_ptr<mirror::MongoConnection> lookups)
      : outbox_(outbox),
        connection_(std::move(connection)),
        lookups_(std::move(lookups)),
        batch_size_(settings.mongo_batch_size),
        retry_max_(std::chrono::seconds(settings.mongo_retry_max_s)),
        options_{settings.mongo_redact, static_cast<int64_t>(settings.mongo_max_document_bytes)} {
    status_.enabled = true;
    status_.state = "starting";
    status_.target = std::move(target);
    if (lookups_) {
      read_through_ = std::make_unique<ReadThrough>(
          *lookups_, reachable_, settings.mongo_read_through_timeout_ms, status_, mutex_);
    }
  }
  ~MongoMirror() override { stop(); }

  void start() override {
    std::lock_guard lock(mutex_);
    if (thread_.joinable()) return;
    stopping_ = false;
    thread_ = std::thread([this] { run(); });
  }

  void stop() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  // Never touches the database or the network: /ready and /metrics call it on I/O
  // threads. The outbox figures are the syncer's last reading.
  MirrorStatus status() const override {
    std::lock_guard lock(mutex_);
    MirrorStatus copy = status_;
    copy.lag_s = oldest_ms_ ? std::max<int64_t>(0, unix_ms_now() - *oldest_ms_) / 1000.0 : 0.0;
    return copy;
  }

  SharedAnswers* shared_answers() override { return read_through_.get(); }

 private:
  void run() {
    LogScope scope(LogFields{{"SYNC", "mongo"}});
    bool indexed = false;
    int failures = 0;
    read_outbox_state();  // before the first attempt, which may wait for MongoDB
    while (!stopping()) {
      std::optional<mirror::MongoError> failed;
      bool idle = false;
      if (!indexed) {
        failed = connection_->create_indexes();
        indexed = !failed;
      }
      if (!failed) failed = send_batch(idle);
      read_outbox_state();
      if (failed) {
        note_failure(*failed, failures);
        if (!sleep_for(backoff(failures++))) return;
        continue;
      }
      if (failures > 0) spdlog::info("mongo mirror: {} reachable again", status_.target);
      failures = 0;
      if (idle && !sleep_for(kIdlePoll)) return;
    }
  }

  // Sends the oldest rows; idle is set when there was nothing to send.
  std::optional<mirror::MongoError> send_batch(bool& idle) {
    auto batch = outbox_.next_batch(0, batch_size_);
    if (!batch.is_ok()) return mirror::MongoError{"store", batch.status().message()};
    if (batch.value().empty()) {
      idle = true;
      set_state("caught_up");
      reachable_ = true;
      return std::nullopt;
    }
    set_state("syncing");
    std::vector<mirror::Write> writes;
    int64_t overflowed = 0;
    for (const MirrorItem& item : batch.value()) {
      mirror::Writes w = mirror::writes_for(item, options_);
      overflowed += w.overflowed ? 1 : 0;
      std::move(w.writes.begin(), w.writes.end(), std::back_inserter(writes));
    }
    writes = mirror::coalesce(std::move(writes));
    std::optional<mirror::MongoError> failed;
    for (int attempt = 0; attempt <= kDuplicateKeyRetries; ++attempt) {
      failed = connection_->write(writes);
      if (!failed || failed->kind != "duplicate_key") break;
      count_error(*failed);  // a racing upsert: the next attempt updates what it inserted
    }
    if (failed) return failed;
    reachable_ = true;
    const int64_t last = batch.value().back().entry.id;
    if (Status s = outbox_.acknowledge(last); !s) return mirror::MongoError{"store", s.message()};
    std::lock_guard lock(mutex_);
    status_.rows_sent += static_cast<int64_t>(batch.value().size());
    status_.overflowed += overflowed;
    status_.last_success_ms = unix_ms_now();
    status_.last_error.clear();
    return std::nullopt;
  }

  // Notes the outbox's depth and oldest row for status().
  void read_outbox_state() {
    auto state = outbox_.outbox_state();
    if (!state.is_ok()) return;
    std::lock_guard lock(mutex_);
    status_.outbox_depth = state.value().depth;
    oldest_ms_ = state.value().oldest_ms;
  }

  void count_error(const mirror::MongoError& error) {
    std::lock_guard lock(mutex_);
    ++status_.errors[error.kind];
  }

  void note_failure(const mirror::MongoError& error, int failures) {
    if (error.kind == "unreachable" || error.kind == "timeout") reachable_ = false;
    count_error(error);
    std::lock_guard lock(mutex_);
    status_.state = "retrying";
    status_.last_error = error.kind + ": " + error.message;
    // The first failure of a run is a warning; the rest are noted at debug level.
    if (failures == 0) {
      spdlog::warn("mongo mirror: {} ({}); the outbox keeps everything and retries", error.message,
                   error.kind);
    } else {
      spdlog::debug("mongo mirror: still failing: {}", error.message);
    }
  }

  std::chrono::milliseconds backoff(int failures) {
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(kFirstBackoff);
    for (int i = 0; i < failures && wait < retry_max_; ++i)
      wait *= 2;
    wait = std::min<std::chrono::milliseconds>(wait, retry_max_);
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    return std::chrono::milliseconds(static_cast<int64_t>(wait.count() * jitter(rng_)));
  }

  // Waits, or returns false at once when stop() is called.
  bool sleep_for(std::chrono::milliseconds wait) {
    std::unique_lock lock(mutex_);
    return !wake_.wait_for(lock, wait, [this] { return stopping_; });
  }

  bool stopping() {
    std::lock_guard lock(mutex_);
    return stopping_;
  }

  void set_state(const char* state) {
    std::lock_guard lock(mutex_);
    status_.state = state;
  }

  Outbox& outbox_;
  std::unique_ptr<mirror::MongoConnection> connection_;
  // Read-through's own pool, with every timeout at mongo.read_through_timeout_ms so
  // that a request never waits longer; nullptr without read-through.
  std::unique_ptr<mirror::MongoConnection> lookups_;
  const int batch_size_;
  const std::chrono::milliseconds retry_max_;
  const mirror::DocumentOptions options_;
  std::mt19937_64 rng_{std::random_device{}()};
  std::atomic<bool> reachable_{true};

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  MirrorStatus status_;
  std::optional<int64_t> oldest_ms_;  // created_at of the oldest outbox row, last read
  std::unique_ptr<ReadThrough> read_through_;
  std::thread thread_;
};

}  // namespace

Result<std::string> mongo_mirror_target(const Settings& settings) {
  return mirror::mongo_target(settings.mongo_uri, settings.mongo_database);
}

Result<std::unique_ptr<Mirror>> make_mongo_mirror(const Settings& settings, Outbox& outbox,
                                                  std::string target) {
  auto connection = mirror::make_mongo_connection(settings.mongo_uri, settings.mongo_database);
  if (!connection.is_ok()) return connection.status();
  std::unique_ptr<mirror::MongoConnection> lookups;
  if (settings.mongo_read_through) {
    auto bounded = mirror::make_mongo_connection(settings.mongo_uri, settings.mongo_database,
                                                 settings.mongo_read_through_timeout_ms);
    if (!bounded.is_ok()) return bounded.status();
    lookups = std::move(bounded).value();
  }
  return std::unique_ptr<Mirror>(std::make_unique<MongoMirror>(
      settings, outbox, std::move(target), std::move(connection).value(), std::move(lookups)));
}

}  // namespace ticketaid
