// A scripted LlmClient for unit tests of the services: no HTTP, no Ollama.
//
// It records every ChatRequest it gets, answers each call with the next scripted
// reply (its deltas in order, then done or the scripted error) and can hold a reply
// after its deltas until the test calls release(), so that a test can act while a
// reply is generating. A cancel ends a held reply at once with the cancel's reason.
// Once the script is used up, each call answers "re: " + the last message's content.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "llm/llm_client.h"

namespace ticketaid::testing {

class ScriptedLlm final : public LlmClient {
 public:
  struct Reply {
    std::vector<std::string> deltas;
    bool hold = false;              // after the deltas, wait for release() or a cancel
    Status failure = Status::ok();  // when not ok: returned after the deltas (and the hold)
  };

  void script(Reply reply) {
    std::lock_guard lock(mutex_);
    script_.push_back(std::move(reply));
  }

  // Lets every reply held now go on.
  void release() {
    std::lock_guard lock(mutex_);
    ++release_epoch_;
    changed_.notify_all();
  }
  // Lets every held reply go on, and holds none from now on (for tear-down).
  void stop_holding() {
    std::lock_guard lock(mutex_);
    never_hold_ = true;
    changed_.notify_all();
  }

  std::vector<ChatRequest> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  std::size_t calls() const {
    std::lock_guard lock(mutex_);
    return requests_.size();
  }
  std::size_t held() const {
    std::lock_guard lock(mutex_);
    return held_;
  }
  // Waits until at least n calls have arrived.
  bool wait_for_calls(std::size_t n, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
  }
  // Waits until at least n replies are being held.
  bool wait_for_held(std::size_t n, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return held_ >= n; });
  }

  Result<ChatOutcome> chat(const ChatRequest& request, const ChatLimits&,
                           const std::function<void(const ChatDelta&)>& on_delta,
                           CancelToken& cancel) override {
    Reply reply;
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(request);
      if (!script_.empty()) {
        reply = std::move(script_.front());
        script_.pop_front();
      } else {
        reply.deltas = {"re: ", request.messages.empty() ? "" : request.messages.back().content};
      }
      changed_.notify_all();
    }
    for (const auto& delta : reply.deltas) {
      if (cancel.cancelled()) return cancel.reason();
      ChatDelta d;
      d.content = delta;
      on_delta(d);
    }
    if (reply.hold) {
      cancel.on_cancel([this] {
        std::lock_guard lock(mutex_);
        changed_.notify_all();
      });
      std::unique_lock lock(mutex_);
      const uint64_t epoch = release_epoch_;
      ++held_;
      changed_.notify_all();
      changed_.wait(lock,
                    [&] { return release_epoch_ > epoch || never_hold_ || cancel.cancelled(); });
      --held_;
      lock.unlock();
      cancel.on_cancel({});
    }
    if (cancel.cancelled()) return cancel.reason();
    if (!reply.failure) return reply.failure;
    ChatOutcome outcome;
    outcome.model = request.model;
    outcome.prompt_tokens = static_cast<int64_t>(request.messages.size());
    outcome.response_tokens = static_cast<int64_t>(reply.deltas.size());
    outcome.duration_ms = 7;
    outcome.done_reason = "stop";
    return outcome;
  }

  Result<std::vector<ModelInfo>> list_models() override {
    return std::vector<ModelInfo>{{"llama3.2:latest", 1, ""}};
  }
  Result<std::string> version() override { return std::string("0.0.0-scripted"); }

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::deque<Reply> script_;
  std::vector<ChatRequest> requests_;
  uint64_t release_epoch_ = 0;
  std::size_t held_ = 0;
  bool never_hold_ = false;
};

}  // namespace ticketaid::testing
