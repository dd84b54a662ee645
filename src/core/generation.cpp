#include "core/generation.h"

#include "core/frames.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/periodic_task.h"

namespace ticketaid {

GenerationSpec spec_from_settings(const Settings& settings, const std::string& model) {
  GenerationSpec spec;
  spec.request.model = model;
  spec.request.think = settings.ollama_think;
  spec.request.options = settings.ollama_options;
  spec.request.options["num_predict"] = settings.generation_max_tokens;
  spec.limits.first_token = std::chrono::seconds(settings.generation_first_token_timeout_s);
  spec.limits.idle = std::chrono::seconds(settings.generation_idle_timeout_s);
  spec.limits.total = std::chrono::seconds(settings.generation_timeout_s);
  spec.forward_thinking = settings.ollama_think;
  spec.coalesce_interval = std::chrono::milliseconds(settings.stream_coalesce_ms);
  spec.coalesce_bytes = settings.stream_coalesce_bytes;
  spec.cancel_on_disconnect = settings.stream_cancel_on_disconnect;
  return spec;
}

Generation::Generation(GenerationSpec spec, LlmClient& llm, Clock& clock, EndHook on_end)
    : spec_(std::move(spec)),
      llm_(llm),
      clock_(clock),
      on_end_(std::move(on_end)),
      coalescer_(spec_.coalesce_interval, spec_.coalesce_bytes),
      created_at_(clock_.now()) {}

bool Generation::attach(const std::shared_ptr<ReplySink>& sink) {
  std::lock_guard lock(mutex_);
  // A reply being stopped ends without an answer; a newcomer must not be handed its
  // error (a reloaded page would see "cancelled"): it waits for the end instead.
  if (stopping_) return false;
  std::weak_ptr<Generation> weak = weak_from_this();
  const ReplySink* raw = sink.get();
  if (!sink->set_detach_hook([weak, raw](bool cancel) {
        if (auto self = weak.lock()) self->on_detach(raw, cancel);
      })) {
    return true;  // the client left already: nothing to deliver, nothing to start
  }
  return fan_out_.attach(sink);
}

void Generation::defer(std::function<void()> later) {
  {
    std::lock_guard lock(mutex_);
    if (!ended_) {
      deferred_.push_back(std::move(later));
      return;
    }
  }
  later();
}

void Generation::start(GenerationQueue& queue) {
  auto job = std::make_shared<GenerationQueue::Job>();
  std::weak_ptr<Generation> weak = weak_from_this();
  // The queue holds the job and the job holds the generation until it has run.
  job->run = [self = shared_from_this()] { self->run(); };
  job->on_position = [weak](int position) {
    if (auto self = weak.lock()) self->fan_out_.set_status(frames::queued(position));
  };
  {
    std::lock_guard lock(mutex_);
    queue_ = &queue;
    job_ = job;
  }
  if (!queue.submit(job)) {
    {
      std::lock_guard lock(mutex_);
      job_.reset();
    }
    finish(Status::error(ErrorCode::busy, "the generation queue is full; try again in a moment"));
  }
}

void Generation::on_detach(const ReplySink* sink, bool cancel) {
  {
    // Under attach's lock: nobody joins between the last listener leaving and the stop.
    std::lock_guard lock(mutex_);
    if (fan_out_.detach(sink) > 0) return;
    if (!cancel && !spec_.cancel_on_disconnect) return;  // runs on and is cached
    stopping_ = true;
  }
  stop(Status::error(ErrorCode::cancelled, "the reply was cancelled"));
}

void Generation::stop(const Status& why) {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cancel_.cancel(why);
  std::shared_ptr<GenerationQueue::Job> job;
  GenerationQueue* queue = nullptr;
  {
    std::lock_guard lock(mutex_);
    job = job_.lock();
    queue = queue_;
  }
  // Still waiting in line: it never reaches the model and nothing was stored.
  if (job && queue && queue->remove(job)) {
    {
      std::lock_guard lock(mutex_);
      job_.reset();
    }
    finish(cancel_.reason());
  }
}

void Generation::on_delta(const ChatDelta& delta) {
  if (!delta.thinking.empty()) {
    if (spec_.forward_thinking) {
      std::lock_guard lock(chunk_mutex_);
      fan_out_.publish(frames::thinking(delta.thinking, seq_), true);
    }
    return;
  }
  answer_.append(delta.content);
  std::lock_guard lock(chunk_mutex_);
  if (auto chunk = coalescer_.add(delta.content, clock_.now())) publish_chunk(*chunk);
}

void Generation::flush_due_chunk() {
  std::lock_guard lock(chunk_mutex_);
  if (auto chunk = coalescer_.due(clock_.now())) publish_chunk(*chunk);
}

void Generation::publish_chunk(const std::string& chunk) {
  if (!first_chunk_at_) {
    first_chunk_at_ = clock_.now();
    metrics().time_to_first_token.observe(
        std::chrono::duration<double>(*first_chunk_at_ - created_at_).count());
  }
  fan_out_.publish(frames::stream(chunk, seq_++), true);
}

void Generation::run() {
  LogScope log_scope(spec_.log_fields);
  {
    std::lock_guard lock(mutex_);
    job_.reset();
  }
  fan_out_.clear_status();
  if (cancel_.cancelled()) {
    finish(cancel_.reason());
    return;
  }
  if (Status begun = spec_.begin(spec_.request); !begun) {
    finish(begun);
    return;
  }
  // With coalescing, a held token goes out within the interval even when the model
  // pauses: a timer cuts what is due while the worker waits for the next line.
  std::optional<PeriodicTask> flusher;
  if (spec_.coalesce_interval.count() > 0) {
    flusher.emplace(spec_.coalesce_interval, [this] { flush_due_chunk(); });
    flusher->start();
  }
  auto outcome = llm_.chat(
      spec_.request, spec_.limits, [this](const ChatDelta& delta) { on_delta(delta); }, cancel_);
  flusher.reset();
  if (!outcome) {
    spdlog::warn("generation {} failed: {}", spec_.key, outcome.status().to_string());
    spec_.abort(outcome.status());
    finish(outcome.status());
    return;
  }
  if (auto tail = coalescer_.flush(clock_.now())) publish_chunk(*tail);  // the timer has stopped
  auto stats = spec_.commit(answer_, outcome.value());
  if (!stats) {
    spdlog::error("generation {}: storing the answer failed: {}", spec_.key,
                  stats.status().to_string());
    spec_.abort(stats.status());
    finish(Status::error(ErrorCode::internal,
                         "the answer could not be stored: " + stats.status().message()));
    return;
  }
  auto& m = metrics();
  if (stats->response_tokens) m.response_tokens.add(*stats->response_tokens);
  if (stats->prompt_tokens) m.prompt_tokens.add(*stats->prompt_tokens);
  if (first_chunk_at_ && stats->response_tokens) {
    double seconds = std::chrono::duration<double>(clock_.now() - *first_chunk_at_).count();
    if (seconds > 0) m.tokens_per_second.observe(*stats->response_tokens / seconds);
  }
  finish(Status::ok(), &stats.value());
}

namespace {

Outcome outcome_of(const Status& status) {
  switch (status.code()) {
    case ErrorCode::ok:
      return Outcome::complete;
    case ErrorCode::timeout:
      return Outcome::timeout;
    case ErrorCode::cancelled:
      return Outcome::cancelled;
    case ErrorCode::busy:
      return Outcome::busy;
    default:
      return Outcome::failed;
  }
}

}  // namespace

void Generation::finish(const Status& status, const GenerationStats* stats) {
  std::vector<std::function<void()>> deferred;
  {
    std::lock_guard lock(mutex_);
    if (ended_) return;
    ended_ = true;
  }
  metrics().generation_ended(outcome_of(status));
  if (on_end_) on_end_(*this);
  fan_out_.close(status.is_ok() ? frames::done(*stats, false) : frames::error(status));
  {
    std::lock_guard lock(mutex_);
    deferred.swap(deferred_);
  }
  for (auto& later : deferred)
    later();
}

}  // namespace ticketaid
