// A cancellation flag that one thread sets and another observes.
//
// The worker doing blocking work may register an abort action (for example,
// closing a socket) that cancel() runs at once, so that a blocked read returns.
// Thread-safety: all methods may be called from any thread. The action runs on the
// thread that calls cancel(); replacing or clearing it waits until a run of the old
// one has returned, so the worker may destroy what the action touches right after.
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
    {
      std::lock_guard lock(mutex_);
      if (cancelled_.load()) return;
      reason_ = std::move(reason);
      cancelled_.store(true);
    }
    std::lock_guard running(action_mutex_);
    if (abort_) abort_();
  }
  bool cancelled() const { return cancelled_.load(); }
  Status reason() const {
    std::lock_guard lock(mutex_);
    return reason_;
  }
  // Registers the action run by cancel(); runs it at once if already cancelled.
  // Pass an empty function to clear it before the resource it touches goes away; this
  // returns only once a run of the previous action (on the cancelling thread) is over.
  // The action must not call into this token.
  void on_cancel(std::function<void()> action) {
    std::lock_guard running(action_mutex_);
    abort_ = std::move(action);
    if (cancelled_.load() && abort_) abort_();
  }

 private:
  mutable std::mutex mutex_;  // guards reason_
  std::atomic<bool> cancelled_{false};
  Status reason_;
  std::mutex action_mutex_;  // guards abort_, and is held while it runs
  std::function<void()> abort_;
};

}  // namespace ticketaid
