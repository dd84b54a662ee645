// A bounded queue in front of a fixed number of generation workers.
//
// At most max_parallel jobs run at once, each on its own worker thread (calls to
// the model block). Up to max_queue more wait, in order; each waiting job is told
// its 1-based position when it enters and whenever it changes. Beyond that,
// submit() refuses (the caller answers busy).
//
// Thread-safety: every method may be called from any thread. Position callbacks
// run under the queue's lock, in order per job: they must only post or publish,
// and never call back into the queue.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace ticketaid {

class GenerationQueue {
 public:
  struct Job {
    std::function<void()> run;             // on a worker thread
    std::function<void(int)> on_position;  // 1 = next to run; optional
    int position = 0;                      // the position last told; the queue's lock
  };

  GenerationQueue(int max_parallel, int max_queue);
  ~GenerationQueue();  // stop()
  GenerationQueue(const GenerationQueue&) = delete;
  GenerationQueue& operator=(const GenerationQueue&) = delete;

  // Runs the job at once if a worker is free, else queues it. False when full or
  // stopped.
  bool submit(const std::shared_ptr<Job>& job);

  // Takes a job out of the waiting line. False if it is not waiting (it runs, ran,
  // or was never submitted).
  bool remove(const std::shared_ptr<Job>& job);

  // Stops taking jobs, drops the waiting ones, and joins the workers once the
  // running jobs return.
  void stop();

  std::size_t waiting() const;
  int running() const;

 private:
  void work();
  void renumber_locked();

  const int max_parallel_;
  const std::size_t max_queue_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> ready_;    // assigned to a worker, not yet picked up
  std::deque<std::shared_ptr<Job>> waiting_;  // in line for a worker
  int running_ = 0;                           // ready_ + jobs being run
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace ticketaid
