// FanOut: order, catch-up replay with the original frames, status and close.
#include "core/fan_out.h"

#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/frames.h"

namespace ticketaid {
namespace {

class RecordingSink : public ReplySink {
 public:
  void deliver(const Frame& frame, bool final) override {
    std::lock_guard lock(mutex_);
    frames_.push_back(frame);
    if (final) ++finals_;
  }
  std::vector<Frame> frames() const {
    std::lock_guard lock(mutex_);
    return frames_;
  }
  int finals() const {
    std::lock_guard lock(mutex_);
    return finals_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<Frame> frames_;
  int finals_ = 0;
};

TEST(FanOut, LateJoinerGetsKeptChunksThenLiveOnesSharingOnePayload) {
  FanOut fan_out;
  auto early = std::make_shared<RecordingSink>();
  auto late = std::make_shared<RecordingSink>();
  ASSERT_TRUE(fan_out.attach(early));
  auto a = frames::stream("a", 0);
  auto b = frames::stream("b", 1);
  auto c = frames::stream("c", 2);
  fan_out.publish(a, true);
  fan_out.publish(b, true);
  ASSERT_TRUE(fan_out.attach(late));
  fan_out.publish(c, true);
  auto done = frames::done({}, false);
  fan_out.close(done);

  const std::vector<Frame> expected = {a, b, c, done};
  EXPECT_EQ(early->frames(), expected);
  EXPECT_EQ(late->frames(), expected);  // the same pointers: one payload per chunk
  EXPECT_EQ(early->finals(), 1);
  EXPECT_EQ(late->finals(), 1);
}

TEST(FanOut, StatusGoesToJoinersUntilCleared) {
  FanOut fan_out;
  auto first = std::make_shared<RecordingSink>();
  fan_out.attach(first);
  fan_out.set_status(frames::queued(3));
  fan_out.set_status(frames::queued(2));
  auto second = std::make_shared<RecordingSink>();
  fan_out.attach(second);
  ASSERT_EQ(second->frames().size(), 1u);
  EXPECT_EQ(*second->frames()[0], *frames::queued(2));
  EXPECT_EQ(first->frames().size(), 2u);
  fan_out.clear_status();
  auto third = std::make_shared<RecordingSink>();
  fan_out.attach(third);
  EXPECT_TRUE(third->frames().empty());
}

TEST(FanOut, DetachCountsAndClosedRefusesAttach) {
  FanOut fan_out;
  auto a = std::make_shared<RecordingSink>();
  auto b = std::make_shared<RecordingSink>();
  fan_out.attach(a);
  fan_out.attach(b);
  EXPECT_EQ(fan_out.detach(a.get()), 1u);
  fan_out.publish(frames::stream("x", 0), true);
  EXPECT_TRUE(a->frames().empty());
  fan_out.close(frames::done({}, false));
  EXPECT_FALSE(fan_out.attach(std::make_shared<RecordingSink>()));
  EXPECT_EQ(fan_out.listeners(), 0u);
}

TEST(FanOut, ConcurrentJoinersAllSeeEveryChunkInOrder) {
  FanOut fan_out;
  constexpr int kChunks = 500;
  constexpr int kJoiners = 8;
  std::vector<std::shared_ptr<RecordingSink>> sinks;
  for (int i = 0; i < kJoiners; ++i)
    sinks.push_back(std::make_shared<RecordingSink>());
  std::thread producer([&] {
    for (int i = 0; i < kChunks; ++i)
      fan_out.publish(frames::stream(std::to_string(i), i), true);
  });
  std::vector<std::thread> joiners;
  for (auto& sink : sinks)
    joiners.emplace_back([&fan_out, sink] { fan_out.attach(sink); });
  producer.join();
  for (auto& t : joiners)
    t.join();
  fan_out.close(frames::done({}, false));
  for (auto& sink : sinks) {
    auto got = sink->frames();
    ASSERT_EQ(got.size(), kChunks + 1u);
    for (int i = 0; i < kChunks; ++i) {
      EXPECT_EQ(*got[i], *frames::stream(std::to_string(i), i));
    }
  }
}

}  // namespace
}  // namespace ticketaid
