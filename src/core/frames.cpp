#include "core/frames.h"

#include <nlohmann/json.hpp>

#include "util/clock.h"
#include "util/metrics.h"

namespace ticketaid::frames {
namespace {

using nlohmann::json;

Frame encode(const json& j) {
  // Invalid UTF-8 from the model is replaced rather than failing the whole reply.
  return std::make_shared<const std::string>(
      j.dump(-1, ' ', false, json::error_handler_t::replace));
}

void put_stats(json& j, const GenerationStats& stats) {
  if (!stats.model.empty()) j["model"] = stats.model;
  if (stats.prompt_tokens) j["promptTokens"] = *stats.prompt_tokens;
  if (stats.response_tokens) j["responseTokens"] = *stats.response_tokens;
  if (stats.duration_ms) j["durationMs"] = *stats.duration_ms;
  if (!stats.done_reason.empty()) j["doneReason"] = stats.done_reason;
}

}  // namespace

Frame stream(std::string_view content, int64_t seq) {
  return encode({{"type", "stream"}, {"content", content}, {"seq", seq}});
}

Frame thinking(std::string_view content, int64_t seq) {
  return encode({{"type", "thinking"}, {"content", content}, {"seq", seq}});
}

Frame cached(const TicketSession& session) {
  const auto created = iso8601_utc(session.updated_at_ms);
  json j = {{"type", "cached"},
            {"response", session.response},
            {"message", "cached answer from " + created},
            {"createdAt", created}};
  if (!session.stats.model.empty()) j["model"] = session.stats.model;
  return encode(j);
}

Frame cached_message(const StoredMessage& reply) {
  const auto created = iso8601_utc(reply.created_at_ms);
  json j = {{"type", "cached"},
            {"response", reply.content},
            {"message", "stored reply from " + created},
            {"createdAt", created},
            {"messageId", reply.id}};
  if (!reply.stats.model.empty()) j["model"] = reply.stats.model;
  return encode(j);
}

Frame done(const GenerationStats& stats, bool cached) {
  json j = {{"type", "done"}};
  put_stats(j, stats);
  if (cached) j["cached"] = true;
  return encode(j);
}

Frame error(const Status& status, std::optional<int64_t> retry_after_ms) {
  metrics().error(status.code());
  json j = {{"type", "error"}, {"message", status.message()}, {"code", to_string(status.code())}};
  if (retry_after_ms) j["retryAfterMs"] = *retry_after_ms;
  return encode(j);
}

Frame queued(int position) {
  return encode({{"type", "queued"}, {"position", position}});
}

Frame pong() {
  static const Frame frame = encode({{"type", "pong"}});
  return frame;
}

}  // namespace ticketaid::frames
