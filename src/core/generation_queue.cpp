#include "core/generation_queue.h"

#include <algorithm>

namespace ticketaid {

GenerationQueue::GenerationQueue(int max_parallel, int max_queue)
    : max_parallel_(std::max(1, max_parallel)), max_queue_(std::max(0, max_queue)) {
  workers_.reserve(max_parallel_);
  for (int i = 0; i < max_parallel_; ++i)
    workers_.emplace_back([this] { work(); });
}

GenerationQueue::~GenerationQueue() {
  stop();
}

bool GenerationQueue::submit(const std::shared_ptr<Job>& job) {
  std::lock_guard lock(mutex_);
  if (stopping_) return false;
  if (running_ < max_parallel_) {
    ++running_;
    ready_.push_back(job);
    wake_.notify_one();
    return true;
  }
  if (waiting_.size() >= max_queue_) return false;
  waiting_.push_back(job);
  job->position = static_cast<int>(waiting_.size());
  if (job->on_position) job->on_position(job->position);
  return true;
}

bool GenerationQueue::remove(const std::shared_ptr<Job>& job) {
  std::lock_guard lock(mutex_);
  auto it = std::find(waiting_.begin(), waiting_.end(), job);
  if (it == waiting_.end()) return false;
  waiting_.erase(it);
  renumber_locked();
  return true;
}

void GenerationQueue::renumber_locked() {
  int position = 1;
  for (const auto& job : waiting_) {
    if (job->on_position && job->position != position) {
      job->position = position;
      job->on_position(position);
    }
    ++position;
  }
}

void GenerationQueue::work() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !ready_.empty(); });
    if (ready_.empty()) return;  // stopping, nothing assigned
    auto job = std::move(ready_.front());
    ready_.pop_front();
    lock.unlock();
    job->run();
    job.reset();
    lock.lock();
    --running_;
    if (!waiting_.empty() && !stopping_) {
      ++running_;
      ready_.push_back(std::move(waiting_.front()));
      waiting_.pop_front();
      renumber_locked();
    }
  }
}

void GenerationQueue::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
    waiting_.clear();
  }
  wake_.notify_all();
  for (auto& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
  workers_.clear();
}

std::size_t GenerationQueue::waiting() const {
  std::lock_guard lock(mutex_);
  return waiting_.size();
}

int GenerationQueue::running() const {
  std::lock_guard lock(mutex_);
  return running_;
}

}  // namespace ticketaid
