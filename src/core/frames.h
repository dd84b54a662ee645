// The server-to-client messages of SPEC §2, encoded once as immutable JSON frames.
//
// The same frames go to WebSocket clients and, one per line, to NDJSON streams.
// Field names of stream, cached, done and error are the original protocol: keep them.
// Thread-safety: any thread. error() also counts the error in metrics().
#pragma once

#include <optional>
#include <string_view>

#include "core/reply_sink.h"
#include "store/store.h"
#include "util/status.h"

namespace ticketaid::frames {

Frame stream(std::string_view content, int64_t seq);
Frame thinking(std::string_view content, int64_t seq);
Frame cached(const TicketSession& session);
// A stored chat reply sent again (an idempotent resend): the shape of cached.
Frame cached_message(const StoredMessage& reply);
Frame done(const GenerationStats& stats, bool cached);
Frame error(const Status& status, std::optional<int64_t> retry_after_ms = std::nullopt);
Frame queued(int position);
Frame pong();

}  // namespace ticketaid::frames
