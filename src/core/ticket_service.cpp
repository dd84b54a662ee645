#include "core/ticket_service.h"

#include "core/frames.h"
#include "util/log.h"
#include "util/metrics.h"

namespace ticketaid {

TicketService::TicketService(Store& store, LlmClient& llm, GenerationQueue& queue, Clock& clock,
                             SettingsSource settings, BlockingExecutor blocking,
                             SharedAnswers* shared_answers)
    : store_(store),
      llm_(llm),
      queue_(queue),
      clock_(clock),
      settings_(std::move(settings)),
      blocking_(std::move(blocking)),
      shared_answers_(shared_answers) {}

void TicketService::request_answer(TicketRequest request, std::shared_ptr<ReplySink> sink) {
  blocking_(
      [this, request = std::move(request), sink = std::move(sink)] { handle(request, sink); });
}

std::size_t TicketService::active_generations() const {
  return flights_.size();
}

bool TicketService::serve_from_cache(const TicketRequest& request,
                                     const std::optional<TicketSession>& stored,
                                     const Settings& settings, ReplySink& sink) {
  if (request.regenerate || !stored || stored->status != SessionStatus::complete) return false;
  if (stored->prompt != request.body && settings.cache_refresh_on_body_change) return false;
  metrics().cache_hits.add();
  sink.deliver(frames::cached(*stored), false);
  sink.deliver(frames::done(stored->stats, true), true);
  return true;
}

bool TicketService::serve_from_shared(const TicketRequest& request, const Settings& settings,
                                      ReplySink& sink) {
  if (shared_answers_ == nullptr || request.regenerate) return false;
  auto shared = shared_answers_->find(request.ticket_id, request.body);
  if (!shared) return false;
  Status imported =
      store_.import_ticket_answer(request.ticket_id, request.body, shared->answer, shared->stats);
  if (!imported) {
    // A generation started here meanwhile, or the store refused: go on as a miss.
    spdlog::debug("ticket {}: answer from the mirror not stored: {}", request.ticket_id,
                  imported.message());
    return false;
  }
  auto stored = store_.find_ticket_session(request.ticket_id);
  return stored && serve_from_cache(request, stored.value(), settings, sink);
}

void TicketService::shutdown() {
  shutting_down_ = true;
  flights_.stop_all(Status::error(ErrorCode::busy, "the daemon is shutting down"));
}

void TicketService::handle(const TicketRequest& request, const std::shared_ptr<ReplySink>& sink) {
  if (sink->detached()) return;
  if (shutting_down_ || refusing_) {
    sink->deliver(frames::error(Status::error(ErrorCode::busy, "the daemon is shutting down")),
                  true);
    return;
  }
  auto settings = settings_();
  for (int attempt = 0; attempt < 3; ++attempt) {
    // 1. Join the generation running for this ticket, or wait for it to end.
    auto found = flights_.join_or_defer(request.ticket_id, request.body, request.regenerate, sink,
                                        [this, request, sink] { request_answer(request, sink); });
    if (found == SingleFlight::Found::joined) metrics().cache_misses.add();
    if (found != SingleFlight::Found::none) return;

    // 2. The cache, read without holding the registry's lock.
    auto stored = store_.find_ticket_session(request.ticket_id);
    if (!stored) {
      sink->deliver(frames::error(stored.status()), true);
      return;
    }
    if (serve_from_cache(request, stored.value(), *settings, *sink)) return;
    if (serve_from_shared(request, *settings, *sink)) return;

    // 3. Start a generation, unless one started, or finished, meanwhile.
    bool served = false;
    auto generation = flights_.register_new(
        request.ticket_id,
        [&] {
          if (request.regenerate) return false;
          auto again = store_.find_ticket_session(request.ticket_id);
          served = again && serve_from_cache(request, again.value(), *settings, *sink);
          return served;
        },
        [&] {
          metrics().cache_misses.add();
          return make_generation(request, *settings);
        },
        sink);
    if (served) return;
    if (!generation) continue;  // one started meanwhile: join it
    generation->start(queue_);
    return;
  }
  sink->deliver(frames::error(Status::error(ErrorCode::internal,
                                            "the ticket kept changing state; try again")),
                true);
}

std::shared_ptr<Generation> TicketService::make_generation(const TicketRequest& request,
                                                           const Settings& settings) {
  GenerationSpec spec = spec_from_settings(settings, settings.ollama_model);
  spec.key = request.ticket_id;
  spec.log_fields = {{"TICKET_ID", request.ticket_id}};
  spec.prompt = request.body;
  if (!settings.ollama_system_prompt.empty()) {
    spec.request.messages.push_back({"system", settings.ollama_system_prompt});
  }
  spec.request.messages.push_back({"user", request.body});

  // The revision this generation writes, set by begin on the worker.
  auto revision = std::make_shared<int>(0);
  const std::string ticket = request.ticket_id;
  const std::string body = request.body;
  const std::string model = settings.ollama_model;
  spec.begin = [this, revision, ticket, body, model](ChatRequest&) -> Status {
    auto begun = store_.begin_ticket_generation(ticket, body, model);
    if (!begun) return begun.status();
    *revision = begun->revision;
    return Status::ok();
  };
  spec.commit = [this, revision, ticket, model](
                    const std::string& answer,
                    const ChatOutcome& outcome) -> Result<GenerationStats> {
    GenerationStats stats{outcome.model.empty() ? model : outcome.model, outcome.prompt_tokens,
                          outcome.response_tokens, outcome.duration_ms, outcome.done_reason};
    if (Status s = store_.complete_ticket_generation(ticket, *revision, answer, stats); !s) {
      return s;
    }
    return stats;
  };
  spec.abort = [this, revision, ticket](const Status& why) {
    auto status = shutting_down_                       ? SessionStatus::interrupted
                  : why.code() == ErrorCode::cancelled ? SessionStatus::cancelled
                                                       : SessionStatus::failed;
    if (Status s = store_.end_ticket_generation(ticket, *revision, status, why.to_string()); !s) {
      spdlog::error("ticket {}: recording the failure failed: {}", ticket, s.to_string());
    }
  };
  return std::make_shared<Generation>(std::move(spec), llm_, clock_,
                                      [this](Generation& g) { flights_.unregister(g); });
}

}  // namespace ticketaid
