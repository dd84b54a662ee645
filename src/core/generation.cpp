#include "core/generation.h"

#include "core/frames.h"
#include "util/log.h"

namespace ticketaid {

Generation::Generation(GenerationSpec spec, LlmClient& llm, Clock& clock, EndHook on_end)
    : spec_(std::move(spec)),
      llm_(llm),
      clock_(clock),
      on_end_(std::move(on_end)),
      coalescer_(spec_.coalesce_interval, spec_.coalesce_bytes) {}

bool Generation::attach(const std::shared_ptr<ReplySink>& sink) {
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
    finish(frames::error(
        Status::error(ErrorCode::busy, "the generation queue is full; try again in a moment")));
  }
}

void Generation::on_detach(const ReplySink* sink, bool cancel) {
  if (fan_out_.detach(sink) > 0) return;
  if (!cancel && !spec_.cancel_on_disconnect) return;  // runs on and is cached
  stop(Status::error(ErrorCode::cancelled, "the reply was cancelled"));
}

void Generation::stop(const Status& why) {
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
    finish(frames::error(cancel_.reason()));
  }
}

void Generation::on_delta(const ChatDelta& delta) {
  if (!delta.thinking.empty()) {
    if (spec_.forward_thinking) {
      fan_out_.publish(frames::thinking(delta.thinking, seq_), true);
    }
    return;
  }
  answer_.append(delta.content);
  if (auto chunk = coalescer_.add(delta.content, clock_.now())) publish_chunk(*chunk);
}

void Generation::publish_chunk(const std::string& chunk) {
  fan_out_.publish(frames::stream(chunk, seq_++), true);
}

void Generation::run() {
  {
    std::lock_guard lock(mutex_);
    job_.reset();
  }
  fan_out_.clear_status();
  if (cancel_.cancelled()) {
    finish(frames::error(cancel_.reason()));
    return;
  }
  if (Status begun = spec_.begin(); !begun) {
    finish(frames::error(begun));
    return;
  }
  auto outcome = llm_.chat(
      spec_.request, spec_.limits, [this](const ChatDelta& delta) { on_delta(delta); }, cancel_);
  if (!outcome) {
    spdlog::warn("generation {} failed: {}", spec_.key, outcome.status().to_string());
    spec_.abort(outcome.status());
    finish(frames::error(outcome.status()));
    return;
  }
  if (auto tail = coalescer_.flush(clock_.now())) publish_chunk(*tail);
  auto stats = spec_.commit(answer_, outcome.value());
  if (!stats) {
    spdlog::error("generation {}: storing the answer failed: {}", spec_.key,
                  stats.status().to_string());
    spec_.abort(stats.status());
    finish(frames::error(Status::error(
        ErrorCode::internal, "the answer could not be stored: " + stats.status().message())));
    return;
  }
  finish(frames::done(stats.value(), false));
}

void Generation::finish(const Frame& final_frame) {
  std::vector<std::function<void()>> deferred;
  {
    std::lock_guard lock(mutex_);
    if (ended_) return;
    ended_ = true;
  }
  if (on_end_) on_end_(*this);
  fan_out_.close(final_frame);
  {
    std::lock_guard lock(mutex_);
    deferred.swap(deferred_);
  }
  for (auto& later : deferred)
    later();
}

}  // namespace ticketaid
