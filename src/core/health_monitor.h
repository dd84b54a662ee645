// Periodic checks of the parts the daemon depends on, for /ready and /metrics.
//
// A thread probes Ollama (GET /api/version) and the store (one read) every
// interval, never per request, and keeps the last result. The first probe starts
// at once; until it ends, Ollama counts as not ready ("not probed yet").
//
// Thread-safety: snapshot() from any thread; start/stop from the owner.
#pragma once

#include <chrono>
#include <mutex>
#include <string>

#include "llm/llm_client.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/periodic_task.h"

namespace ticketaid {

struct HealthSnapshot {
  bool ollama_ok = false;
  std::string ollama_version;
  std::string ollama_error = "not probed yet";
  bool store_ok = false;
  std::string store_error = "not probed yet";
  int64_t checked_at_ms = 0;  // unix ms of the last probe; 0 before the first
};

class HealthMonitor {
 public:
  HealthMonitor(LlmClient& llm, Store& store, std::chrono::seconds interval);
  ~HealthMonitor();  // stop()
  HealthMonitor(const HealthMonitor&) = delete;
  HealthMonitor& operator=(const HealthMonitor&) = delete;

  void start() { task_.start(); }
  void stop() { task_.stop(); }
  HealthSnapshot snapshot() const;

 private:
  void probe();

  LlmClient& llm_;
  Store& store_;
  mutable std::mutex mutex_;
  HealthSnapshot last_;
  PeriodicTask task_;  // last: stopped before the members it uses go
};

}  // namespace ticketaid
