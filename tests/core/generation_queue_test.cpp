// GenerationQueue: parallelism bound, positions, busy, removal. Jobs block on
// latches the test opens, so nothing here sleeps.
#include "core/generation_queue.h"

#include <gtest/gtest.h>

#include <future>
#include <mutex>
#include <vector>

namespace ticketaid {
namespace {

// A job that reports when it starts and runs until released.
struct BlockingJob {
  std::shared_ptr<GenerationQueue::Job> job = std::make_shared<GenerationQueue::Job>();
  std::promise<void> started;
  std::promise<void> release;
  std::shared_future<void> release_future = release.get_future().share();
  std::mutex mutex;
  std::vector<int> positions;

  BlockingJob() {
    job->run = [this] {
      started.set_value();
      release_future.wait();
    };
    job->on_position = [this](int p) {
      std::lock_guard lock(mutex);
      positions.push_back(p);
    };
  }
  std::vector<int> seen() {
    std::lock_guard lock(mutex);
    return positions;
  }
};

TEST(GenerationQueue, RunsAtMostMaxParallelAndTellsPositions) {
  GenerationQueue queue(2, 3);
  BlockingJob a, b, c, d, e, f;
  ASSERT_TRUE(queue.submit(a.job));
  ASSERT_TRUE(queue.submit(b.job));
  a.started.get_future().wait();
  auto b_started = b.started.get_future();
  b_started.wait();
  EXPECT_EQ(queue.running(), 2);

  ASSERT_TRUE(queue.submit(c.job));
  ASSERT_TRUE(queue.submit(d.job));
  ASSERT_TRUE(queue.submit(e.job));
  EXPECT_FALSE(queue.submit(f.job)) << "the fourth waiting job is over max_queue";
  EXPECT_EQ(queue.waiting(), 3u);
  EXPECT_EQ(c.seen(), (std::vector<int>{1}));
  EXPECT_EQ(d.seen(), (std::vector<int>{2}));
  EXPECT_EQ(e.seen(), (std::vector<int>{3}));
  EXPECT_TRUE(a.seen().empty()) << "a job that runs at once is never queued";

  auto c_started = c.started.get_future();
  a.release.set_value();
  c_started.wait();
  EXPECT_EQ(d.seen(), (std::vector<int>{2, 1}));
  EXPECT_EQ(e.seen(), (std::vector<int>{3, 2}));

  EXPECT_TRUE(queue.remove(d.job));
  EXPECT_FALSE(queue.remove(d.job));
  EXPECT_FALSE(queue.remove(c.job)) << "a running job is not waiting";
  EXPECT_EQ(e.seen(), (std::vector<int>{3, 2, 1}));

  auto e_started = e.started.get_future();
  b.release.set_value();
  e_started.wait();
  c.release.set_value();
  e.release.set_value();
  queue.stop();
  EXPECT_EQ(queue.running(), 0);
}

TEST(GenerationQueue, StopWaitsForRunningJobsAndRefusesNewOnes) {
  GenerationQueue queue(1, 4);
  BlockingJob running, waiting;
  ASSERT_TRUE(queue.submit(running.job));
  running.started.get_future().wait();
  ASSERT_TRUE(queue.submit(waiting.job));
  running.release.set_value();
  waiting.release.set_value();
  std::thread stopper([&] { queue.stop(); });
  stopper.join();
  BlockingJob late;
  EXPECT_FALSE(queue.submit(late.job));
}

}  // namespace
}  // namespace ticketaid
