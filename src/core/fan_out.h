// Fan-out of one reply to every connection listening to it, with catch-up replay.
//
// Frames published with replay = true (stream and thinking chunks) are kept, so a
// listener that attaches late first receives every chunk already cut, with its
// original seq, then the live ones. Each frame is one shared immutable payload,
// whatever the number of listeners. Delivery happens under the fan-out's lock so
// every listener sees frames in publication order; ReplySink::deliver only posts,
// so the lock is held briefly.
//
// Thread-safety: every method may be called from any thread. Never call into a
// FanOut from inside ReplySink::deliver.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "core/reply_sink.h"

namespace ticketaid {

class FanOut {
 public:
  // Replays the kept frames and the current status frame (queued position) to the
  // sink, then adds it. Returns false, without delivering, after close().
  bool attach(const std::shared_ptr<ReplySink>& sink);

  // Removes the sink; returns how many listeners remain.
  std::size_t detach(const ReplySink* sink);

  // Delivers to every listener; keeps the frame for late joiners when replay is set.
  void publish(const Frame& frame, bool replay);

  // A frame describing the current state (such as the queue position): delivered
  // now, replaced by the next status, and given to each joiner until cleared.
  void set_status(const Frame& frame);
  void clear_status();

  // Delivers the final frame to every listener and refuses later attaches.
  void close(const Frame& final_frame);

  std::size_t listeners() const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<ReplySink>> sinks_;
  std::vector<Frame> kept_;
  Frame status_;
  bool closed_ = false;
};

}  // namespace ticketaid
