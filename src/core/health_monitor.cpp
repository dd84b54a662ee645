#include "core/health_monitor.h"

#include "util/log.h"
#include "util/metrics.h"

namespace ticketaid {

HealthMonitor::HealthMonitor(LlmClient& llm, Store& store, std::chrono::seconds interval)
    : llm_(llm), store_(store), task_(interval, [this] { probe(); }) {}

HealthMonitor::~HealthMonitor() {
  stop();
}

HealthSnapshot HealthMonitor::snapshot() const {
  std::lock_guard lock(mutex_);
  return last_;
}

void HealthMonitor::probe() {
  HealthSnapshot next;
  auto version = llm_.version();
  next.ollama_ok = version.is_ok();
  next.ollama_version = version ? version.value() : "";
  next.ollama_error = version ? "" : version.status().message();
  auto read = store_.find_ticket_session("health-probe");
  next.store_ok = read.is_ok();
  next.store_error = read ? "" : read.status().message();
  next.checked_at_ms = system_clock().unix_ms();
  metrics().ollama_up.set(next.ollama_ok ? 1 : 0);
  metrics().store_up.set(next.store_ok ? 1 : 0);

  std::lock_guard lock(mutex_);
  // Log changes of state once, not every probe.
  if (next.ollama_ok != last_.ollama_ok || last_.checked_at_ms == 0) {
    if (next.ollama_ok) {
      spdlog::info("Ollama is reachable (version {})", next.ollama_version);
    } else {
      spdlog::warn("Ollama is not ready: {}", next.ollama_error);
    }
  }
  if (!next.store_ok && last_.store_ok)
    spdlog::error("the database failed a read: {}", next.store_error);
  last_ = std::move(next);
}

}  // namespace ticketaid
