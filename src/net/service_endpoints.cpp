// Service endpoints: liveness, readiness, metrics, connection statistics and the
// models Ollama has.
#include "core/mirror.h"
#include "net/router.h"
#include "util/clock.h"
#include "util/metrics.h"

namespace ticketaid::handlers {
namespace {

using nlohmann::json;

LiveGauges live_gauges(const ServerContext& context) {
  LiveGauges live;
  live.active_generations = static_cast<int64_t>(context.tickets.active_generations() +
                                                 context.chats.active_generations());
  live.queue_depth = static_cast<int64_t>(context.tickets.queue_depth());
  live.websockets_open = static_cast<int64_t>(context.connections.total());
  const RateLimiterHealth limiter = context.rate_limiter.health();
  live.redis_limiter = limiter.backend == "redis";
  live.rate_limiter_degraded = limiter.degraded;
  if (context.mirror != nullptr) live.mirror = context.mirror->status();
  return live;
}

json mirror_json(Mirror* mirror) {
  if (mirror == nullptr) return {{"enabled", false}};
  const MirrorStatus m = mirror->status();
  json out = {{"enabled", true},       {"state", m.state},
              {"target", m.target},    {"outboxDepth", m.outbox_depth},
              {"lagSeconds", m.lag_s}, {"rowsSent", m.rows_sent},
              {"errors", m.errors}};
  if (m.last_success_ms) out["lastSuccess"] = iso8601_utc(*m.last_success_ms);
  if (!m.last_error.empty()) out["lastError"] = m.last_error;
  return out;
}

}  // namespace

void health(HttpRequest&, const std::shared_ptr<HttpResponder>& responder,
            const std::shared_ptr<const ServerContext>&) {
  responder->reply(json_reply(200, {{"status", "ok"}}));
}

void ready(HttpRequest&, const std::shared_ptr<HttpResponder>& responder,
           const std::shared_ptr<const ServerContext>& context) {
  auto h = context->health.snapshot();
  json failing = json::array();
  if (!h.store_ok) failing.push_back("storage");
  if (!h.ollama_ok) failing.push_back("ollama");
  // Redis down with on_failure = local still serves (limits are kept per node); with
  // deny this node refuses model work, so it is not ready.
  const auto settings = context->settings();
  const RateLimiterHealth limiter = context->rate_limiter.health();
  if (limiter.degraded && settings->redis_on_failure == "deny") failing.push_back("redis");
  json body = {
      {"status", failing.empty() ? "ready" : "not_ready"},
      {"storage", {{"ok", h.store_ok}}},
      {"ollama", {{"ok", h.ollama_ok}, {"url", settings->ollama_url}}},
      {"rateLimit", {{"backend", limiter.backend}, {"degraded", limiter.degraded}}},
  };
  if (!h.store_ok) body["storage"]["error"] = h.store_error;
  if (h.ollama_ok) {
    body["ollama"]["version"] = h.ollama_version;
  } else {
    body["ollama"]["error"] = h.ollama_error;
  }
  if (h.checked_at_ms) body["checkedAt"] = iso8601_utc(h.checked_at_ms);
  if (!failing.empty()) body["failing"] = failing;
  // MongoDB is optional: its state is reported, and never makes the node unready.
  body["mirror"] = mirror_json(context->mirror);
  responder->reply(json_reply(failing.empty() ? 200 : 503, body));
}

void prometheus_metrics(HttpRequest&, const std::shared_ptr<HttpResponder>& responder,
                        const std::shared_ptr<const ServerContext>& context) {
  HttpReply reply;
  reply.content_type = "text/plain; version=0.0.4; charset=utf-8";
  reply.body = render_prometheus(metrics(), live_gauges(*context));
  responder->reply(std::move(reply));
}

void ws_status(HttpRequest&, const std::shared_ptr<HttpResponder>& responder,
               const std::shared_ptr<const ServerContext>& context) {
  const auto& m = metrics();
  auto live = live_gauges(*context);
  responder->reply(json_reply(200, {{"status", "ready"},
                                    {"stats",
                                     {{"total_connections", m.connections_total.value()},
                                      {"current_connections", m.connections_current.value()},
                                      {"peak_connections", m.connections_peak.value()},
                                      {"total_messages", m.messages_total.value()},
                                      {"active_generations", live.active_generations},
                                      {"queue_size", live.queue_depth},
                                      {"cache_hits", m.cache_hits.value()},
                                      {"cache_misses", m.cache_misses.value()}}}}));
}

void list_models(HttpRequest&, const std::shared_ptr<HttpResponder>& responder,
                 const std::shared_ptr<const ServerContext>& context) {
  context->blocking([responder, context] {
    auto models = context->llm.list_models();
    if (!models) return responder->reply(error_reply(models.status()));
    const std::string default_model = context->settings()->ollama_model;
    json items = json::array();
    bool has_default = false;
    for (const auto& m : models.value()) {
      bool is_default = m.name == default_model || m.name == default_model + ":latest";
      has_default = has_default || is_default;
      items.push_back({{"name", m.name},
                       {"size", m.size},
                       {"modifiedAt", m.modified_at},
                       {"default", is_default}});
    }
    responder->reply(json_reply(
        200, {{"models", items}, {"default", default_model}, {"defaultInstalled", has_default}}));
  });
}

}  // namespace ticketaid::handlers
