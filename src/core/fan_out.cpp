#include "core/fan_out.h"

#include <algorithm>

namespace ticketaid {

bool FanOut::attach(const std::shared_ptr<ReplySink>& sink) {
  std::lock_guard lock(mutex_);
  if (closed_) return false;
  for (const auto& frame : kept_)
    sink->deliver(frame, false);
  if (status_) sink->deliver(status_, false);
  sinks_.push_back(sink);
  return true;
}

std::size_t FanOut::detach(const ReplySink* sink) {
  std::lock_guard lock(mutex_);
  std::erase_if(sinks_, [sink](const auto& s) { return s.get() == sink; });
  return sinks_.size();
}

void FanOut::publish(const Frame& frame, bool replay) {
  std::lock_guard lock(mutex_);
  if (closed_) return;
  if (replay) kept_.push_back(frame);
  for (const auto& sink : sinks_)
    sink->deliver(frame, false);
}

void FanOut::set_status(const Frame& frame) {
  std::lock_guard lock(mutex_);
  if (closed_) return;
  status_ = frame;
  for (const auto& sink : sinks_)
    sink->deliver(frame, false);
}

void FanOut::clear_status() {
  std::lock_guard lock(mutex_);
  status_.reset();
}

void FanOut::close(const Frame& final_frame) {
  std::vector<std::shared_ptr<ReplySink>> sinks;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    closed_ = true;
    sinks.swap(sinks_);
    kept_.clear();
    status_.reset();
    for (const auto& sink : sinks)
      sink->deliver(final_frame, true);
  }
}

std::size_t FanOut::listeners() const {
  std::lock_guard lock(mutex_);
  return sinks_.size();
}

}  // namespace ticketaid
