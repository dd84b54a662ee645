// A cancellation flag that one thread sets and another observes.
//
// The worker doing blocking work may register an abort action (for example,
// closing a socket) that cancel() runs at once, so that a blocked read returns.
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <string>

#include "util/status.h"

namespace ticketaid {

class CancelToken {
 public:
  // Sets the flag once, with the reason reported to whoever waits on the work; runs
  // the registered abort action. Later calls do nothing.
  void cancel(Status reason) {
    std::function<void()> action;
    {
      std::lock_guard lock(mutex_);
      if (cancelled_.load()) return;
      reason_ = std::move(reason);
      cancelled_.store(true);
      action = abort_;
    }
    if (action) action();
  }
  bool cancelled() const { return cancelled_.load(); }
  Status reason() const {
    std::lock_guard lock(mutex_);
    return reason_;
  }
  // Registers the action run by cancel(); runs it at once if already cancelled.
  // Pass an empty function to clear it before the resource it touches goes away.
  void on_cancel(std::function<void()> action) {
    bool run_now = false;
    {
      std::lock_guard lock(mutex_);
      abort_ = action;
      run_now = cancelled_.load() && abort_;
    }
    if (run_now) action();
  }

 private:
  mutable std::mutex mutex_;
  std::atomic<bool> cancelled_{false};
  Status reason_;
  std::function<void()> abort_;
};

}  // namespace ticketaid
