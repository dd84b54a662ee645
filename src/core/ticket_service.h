// Ticket answers: the cache, single flight and regeneration rules of SPEC §2.
//
// A request for a ticket's answer is served from the store when the stored answer
// is complete and was made for the same body; otherwise it joins the generation
// already running for that ticket and body, or starts one. A request with another
// body while a generation runs is answered after it ends.
//
// Thread-safety: every public method may be called from any thread and returns at
// once; blocking work (store reads) runs on the executor given at construction.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/generation.h"
#include "core/generation_queue.h"
#include "core/mirror.h"
#include "core/reply_sink.h"
#include "core/single_flight.h"
#include "llm/llm_client.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/config.h"

namespace ticketaid {

// Runs a task on a thread where blocking is allowed.
using BlockingExecutor = std::function<void(std::function<void()>)>;
using SettingsSource = std::function<std::shared_ptr<const Settings>()>;

struct TicketRequest {
  std::string ticket_id;
  std::string body;
  bool regenerate = false;
};

class TicketService {
 public:
  TicketService(Store& store, LlmClient& llm, GenerationQueue& queue, Clock& clock,
                SettingsSource settings, BlockingExecutor blocking,
                SharedAnswers* shared_answers = nullptr);

  // Answers the request into the sink: cached + done, or stream... + done, or error.
  void request_answer(TicketRequest request, std::shared_ptr<ReplySink> sink);

  // Generations running or queued now.
  std::size_t active_generations() const;
  // Generations waiting for a free worker.
  std::size_t queue_depth() const { return queue_.waiting(); }

  // The drain before shutdown(): new requests (also those that would join a running
  // generation) get busy; the running generations go on to their end.
  void refuse_new_requests() { refusing_ = true; }
  // Stops every generation (the daemon is stopping): their sessions are left
  // interrupted, to be regenerated on the next request. New requests get busy.
  void shutdown();

 private:
  void handle(const TicketRequest& request, const std::shared_ptr<ReplySink>& sink);
  // On a local miss: the answer another node made, found through the mirror, is
  // stored here and served as cached. False when there is none.
  bool serve_from_shared(const TicketRequest& request, const Settings& settings, ReplySink& sink);
  bool serve_from_cache(const TicketRequest& request, const std::optional<TicketSession>& stored,
                        const Settings& settings, ReplySink& sink);
  std::shared_ptr<Generation> make_generation(const TicketRequest& request,
                                              const Settings& settings);

  Store& store_;
  LlmClient& llm_;
  GenerationQueue& queue_;
  Clock& clock_;
  SettingsSource settings_;
  BlockingExecutor blocking_;
  SharedAnswers* shared_answers_;  // nullptr: no read-through

  std::atomic<bool> shutting_down_{false};
  std::atomic<bool> refusing_{false};  // draining: new requests get busy
  SingleFlight flights_;               // by ticket id
};

}  // namespace ticketaid
