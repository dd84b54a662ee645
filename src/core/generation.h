// One reply being generated, shared by every request that asked for it (single
// flight). The engine's unit: ticket answers use it now, chat replies later.
//
// Life: created by a service and registered under its key; start() submits it to
// the GenerationQueue; on a worker, run() calls spec.begin, streams the model's
// reply through a Coalescer into the FanOut, then spec.commit (durable) and only
// then the final done frame; or spec.abort and an error frame. on_end runs before
// the final frame goes out, so the service can unregister it first: a request that
// arrives after that starts afresh instead of joining a closed reply.
//
// Thread-safety: attach/defer/detach from any thread; run() on one worker.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/coalescer.h"
#include "core/fan_out.h"
#include "core/generation_queue.h"
#include "llm/llm_client.h"
#include "store/store.h"
#include "util/cancel_token.h"
#include "util/clock.h"
#include "util/config.h"
#include "util/log_fields.h"

namespace ticketaid {

struct GenerationSpec {
  std::string key;     // single-flight key
  std::string prompt;  // the request that joiners must match
  ChatRequest request;
  ChatLimits limits;
  bool forward_thinking = false;
  std::chrono::milliseconds coalesce_interval{0};
  std::size_t coalesce_bytes = 4096;
  bool cancel_on_disconnect = false;
  LogFields log_fields;  // journal fields of the events logged while it runs (TICKET_ID=...)

  // Blocking hooks, run on the worker.
  // Before the model is asked: store "generating", or load the conversation into
  // the request's messages.
  std::function<Status(ChatRequest& request)> begin;
  // Makes the answer durable; returns the stats announced in done.
  std::function<Result<GenerationStats>(const std::string& answer, const ChatOutcome& outcome)>
      commit;
  std::function<void(const Status& why)> abort;  // after begin succeeded, on any failure
};

// A spec with the model, options, time limits and streaming settings filled in from
// the settings; the caller adds the key, the prompt, the messages and the hooks.
GenerationSpec spec_from_settings(const Settings& settings, const std::string& model);

class Generation : public std::enable_shared_from_this<Generation> {
 public:
  using EndHook = std::function<void(Generation&)>;

  Generation(GenerationSpec spec, LlmClient& llm, Clock& clock, EndHook on_end);

  const std::string& key() const { return spec_.key; }
  const std::string& prompt() const { return spec_.prompt; }

  // Adds a listener (replaying what it missed). False when the reply has ended or is
  // being stopped (the caller then defers the request until it has ended).
  bool attach(const std::shared_ptr<ReplySink>& sink);
  // Runs `later` after the reply has ended (a request that must wait for it).
  void defer(std::function<void()> later);
  // Submits to the queue; when it is full, ends at once with busy.
  void start(GenerationQueue& queue);
  // Stops the reply whatever its listeners: taken out of the queue, or the model
  // request aborted. The reason is what listeners and spec.abort are given.
  void stop(const Status& why);

 private:
  void run();
  void on_detach(const ReplySink* sink, bool cancel);
  void on_delta(const ChatDelta& delta);
  void publish_chunk(const std::string& chunk);  // under chunk_mutex_
  void flush_due_chunk();
  // Ends the reply: done (status ok, with the stored stats) or error.
  void finish(const Status& status, const GenerationStats* stats = nullptr);

  GenerationSpec spec_;
  LlmClient& llm_;
  Clock& clock_;
  EndHook on_end_;
  FanOut fan_out_;
  CancelToken cancel_;
  std::mutex chunk_mutex_;  // the worker and the coalescing timer cut chunks
  Coalescer coalescer_;     // guarded by chunk_mutex_
  const std::chrono::steady_clock::time_point created_at_;
  std::optional<std::chrono::steady_clock::time_point> first_chunk_at_;  // chunk_mutex_
  std::string answer_;                                                   // worker only
  int64_t seq_ = 0;                                                      // chunk_mutex_

  std::mutex mutex_;  // guards the members below
  GenerationQueue* queue_ = nullptr;
  std::weak_ptr<GenerationQueue::Job> job_;  // the queue owns the job
  std::vector<std::function<void()>> deferred_;
  bool ended_ = false;
  bool stopping_ = false;  // stop() was called: no new listeners
};

}  // namespace ticketaid
