// The registry of running generations by key: one reply per key at a time, shared
// by every request that asks for the same thing (single flight).
//
// A request finds the generation running under its key and either joins it (same
// prompt, or a request that accepts any) or waits for it to end (another prompt),
// or, when none runs, registers a new one. Ticket answers key by ticket id, chat
// replies by conversation id.
//
// Thread-safety: every method may be called from any thread. The callbacks given
// to start() run under the registry's lock: keep them short (a store read at most).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/generation.h"

namespace ticketaid {

class SingleFlight {
 public:
  enum class Found {
    none,      // nothing runs under the key
    joined,    // the sink was attached to the running generation
    deferred,  // another prompt runs; `retry` runs when it ends
  };

  // join_any: join whatever runs (regenerate), not only the same prompt.
  Found join_or_defer(const std::string& key, const std::string& prompt, bool join_any,
                      const std::shared_ptr<ReplySink>& sink, std::function<void()> retry);

  // Registers make()'s generation under key and attaches the sink, unless one runs
  // there already (returns nullptr: join instead) or served() returns true (the
  // request was answered meanwhile, e.g. from the cache). The caller then calls
  // start() on the generation it got.
  std::shared_ptr<Generation> register_new(const std::string& key,
                                           const std::function<bool()>& served,
                                           const std::function<std::shared_ptr<Generation>()>& make,
                                           const std::shared_ptr<ReplySink>& sink);

  // Called by a generation as it ends (its EndHook).
  void unregister(Generation& generation);

  std::size_t size() const;
  // Stops every running generation with the reason.
  void stop_all(const Status& why);

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<Generation>> running_;
};

}  // namespace ticketaid
