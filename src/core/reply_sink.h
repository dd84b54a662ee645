// Where the frames of one reply go: the seam between the engine and a connection.
//
// A connection makes one ReplySink per request it sends to the engine (a WebSocket
// message, later an HTTP request) and hands it to a service. The engine delivers
// frames to it from its own threads; deliver() must not block (post to the
// connection's strand and return). The last frame of a reply is delivered with
// final = true. A frame is an immutable JSON text shared by every listener.
//
// Thread-safety: deliver() and detach() may be called from any thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace ticketaid {

using Frame = std::shared_ptr<const std::string>;

class ReplySink {
 public:
  virtual ~ReplySink() = default;

  virtual void deliver(const Frame& frame, bool final) = 0;

  // The connection no longer wants this reply: it went away (cancel = false) or the
  // client sent cancel (cancel = true). Runs the engine's detach hook once.
  void detach(bool cancel) {
    std::function<void(bool)> hook;
    {
      std::lock_guard lock(mutex_);
      if (detached_.exchange(true)) return;
      hook = std::move(on_detach_);
    }
    if (hook) hook(cancel);
  }
  bool detached() const { return detached_.load(); }

  // Set by the engine when it attaches the sink to a reply. Returns false (and does
  // not keep the hook) when the sink is already detached.
  bool set_detach_hook(std::function<void(bool)> hook) {
    std::lock_guard lock(mutex_);
    if (detached_.load()) return false;
    on_detach_ = std::move(hook);
    return true;
  }

 private:
  std::mutex mutex_;
  std::atomic<bool> detached_{false};
  std::function<void(bool)> on_detach_;
};

}  // namespace ticketaid
