// The service endpoints end to end (SPEC §3 "Service endpoints"): /health, /ready from
// the periodic probe of Ollama, /ws/status, /api/models and /metrics, whose text is
// read with the Prometheus project's own Python parser rather than a parser of ours.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "integration/daemon_fixture.h"
#include "integration/rest_client.h"

namespace ticketaid::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// Reads Prometheus text on stdin with prometheus_client's parser (which refuses
// malformed text) and prints {"types": {family: type}, "samples": {"name{labels}": v}},
// labels sorted. Some versions of the parser drop "_total" from a counter's family
// name; sample names are kept as written, so tests look samples up.
constexpr const char* kParseMetrics = R"(import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {"types": {}, "samples": {}}
for family in text_string_to_metric_families(sys.stdin.read()):
    out["types"][family.name] = family.type
    for s in family.samples:
        labels = ",".join('%s="%s"' % (k, v) for k, v in sorted(s.labels.items()))
        out["samples"][s.name + ("{" + labels + "}" if labels else "")] = s.value
print(json.dumps(out))
)";

std::vector<std::string> strings_of(const json& array) {
  std::vector<std::string> out;
  if (!array.is_array()) return out;
  for (const auto& item : array)
    out.push_back(item.is_string() ? item.get<std::string>() : item.dump());
  return out;
}

class ServiceEndpoints : public DaemonTest {
 protected:
  int port() const { return daemon_->port(); }

  HttpResult get(const std::string& path) { return http_get(port(), path); }

  // Starts the daemon against an Ollama at `url` (the fixture's fake otherwise).
  void start_daemon_with_ollama(const std::string& url,
                                std::map<std::string, std::string> env = {}) {
    DaemonOptions options;
    options.db_path = db_path();
    options.ollama_url = url;
    options.env = std::move(env);
    daemon_ = std::make_unique<DaemonProcess>(options);
    ASSERT_TRUE(daemon_->start()) << daemon_->error() << "\n" << daemon_->stderr_text();
  }

  // Polls GET path until `condition` holds for the response; returns the last one.
  template <typename Condition>
  HttpResult poll(const std::string& path, Condition condition,
                  std::chrono::milliseconds timeout = 15s) {
    HttpResult last;
    bool reached = wait_until(
        [&] {
          last = get(path);
          return condition(last);
        },
        timeout);
    EXPECT_TRUE(reached) << "GET " << path << " never got there; last: " << last.describe()
                         << "\ndaemon stderr:\n"
                         << daemon_->stderr_text();
    return last;
  }

  json stats() {
    auto res = get("/ws/status");
    EXPECT_EQ(res.status, 200) << res.describe();
    return res.json.is_object() ? res.json.value("stats", json::object()) : json::object();
  }

  bool wait_for_stat(const std::string& name, int64_t value) {
    int64_t last = -1;
    bool reached = wait_until([&] {
      last = stats().value(name, int64_t{-1});
      return last == value;
    });
    EXPECT_TRUE(reached) << name << " stayed " << last << ", expected " << value;
    return reached;
  }

  // GET /metrics, checked and parsed by prometheus_client (see kParseMetrics).
  json scrape() {
    auto res = get("/metrics");
    EXPECT_EQ(res.status, 200) << res.describe();
    const auto type = res.header("Content-Type");
    EXPECT_TRUE(type.starts_with("text/plain")) << type;
    EXPECT_NE(type.find("version=0.0.4"), std::string::npos) << type;
    const auto text_path = dir_.path() / "metrics.txt";
    const auto script_path = dir_.path() / "parse_metrics.py";
    std::ofstream(text_path) << res.body;
    std::ofstream(script_path) << kParseMetrics;
    const std::string command =
        "/usr/bin/python3 '" + script_path.string() + "' < '" + text_path.string() + "' 2>&1";
    FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr) {
      ADD_FAILURE() << "cannot run python3";
      return json::object();
    }
    std::string output;
    char buf[4096];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, pipe))
      output.append(buf, n);
    const int status = ::pclose(pipe);
    if (status != 0) {
      ADD_FAILURE() << "the Prometheus parser refused /metrics (is python3-prometheus-client "
                       "installed? see .ci/deps):\n"
                    << output << "\n--- metrics ---\n"
                    << res.body;
      return json::object();
    }
    auto parsed = json::parse(output, nullptr, false);
    if (!parsed.is_object()) {
      ADD_FAILURE() << "the parser printed no JSON: " << output;
      return json::object();
    }
    return parsed;
  }

  // A sample's value, or -1 when the scrape has no such sample.
  static double sample(const json& scraped, const std::string& key) {
    const auto& samples = scraped.value("samples", json::object());
    auto it = samples.find(key);
    return it == samples.end() ? -1 : it->get<double>();
  }

  // A family's type, under its name with or without the "_total" suffix.
  static std::string family_type(const json& scraped, const std::string& name) {
    const auto& types = scraped.value("types", json::object());
    for (const auto& candidate : {name, name + "_total"}) {
      if (types.contains(candidate)) return types[candidate].get<std::string>();
    }
    if (name.ends_with("_total")) {
      const auto bare = name.substr(0, name.size() - 6);
      if (types.contains(bare)) return types[bare].get<std::string>();
    }
    return "";
  }

  // Asks over the WebSocket and reads the whole reply.
  std::vector<json> ask_once(WsClient& client, const std::string& body) {
    client.send_json({{"ticketBody", body}});
    return read_reply(client);
  }
};

// --- /health, /ready -----------------------------------------------------------------

TEST_F(ServiceEndpoints, HealthIsOk) {
  start_daemon();
  auto res = get("/health");
  ASSERT_EQ(res.status, 200) << res.describe();
  EXPECT_EQ(res.json, json({{"status", "ok"}}));
  EXPECT_NE(res.header("Content-Type").find("application/json"), std::string::npos);
}

TEST_F(ServiceEndpoints, HeadAnswersHeadersOnlyAndTheConnectionStaysUsable) {
  start_daemon();
  // One kept-alive connection: a body after HEAD's headers would be read as the start
  // of the next response.
  auto client = rest_client(port());
  client.set_keep_alive(true);
  auto head = client.Head("/health");
  ASSERT_TRUE(head) << httplib::to_string(head.error());
  EXPECT_EQ(head->status, 200);
  EXPECT_TRUE(head->body.empty());
  EXPECT_EQ(head->get_header_value("Content-Length"), "15") << "the length GET would have";
  auto get_after = client.Get("/health");
  ASSERT_TRUE(get_after) << httplib::to_string(get_after.error());
  EXPECT_EQ(get_after->status, 200);
  EXPECT_EQ(json::parse(get_after->body, nullptr, false), json({{"status", "ok"}}))
      << get_after->body;
}

TEST_F(ServiceEndpoints, ReadyFollowsTheProbeOfOllama) {
  REQUIRE_FAKE_OLLAMA();
  auto ollama = std::make_unique<FakeOllama>();
  const int ollama_port = ollama->port();
  start_daemon_with_ollama(ollama->url(), {{"TICKETAID_OLLAMA_PROBE_INTERVAL_S", "1"}});

  auto ready = poll("/ready", [](const HttpResult& r) { return r.status == 200; });
  EXPECT_EQ(ready.json.value("status", ""), "ready") << ready.describe();
  EXPECT_FALSE(ready.json.contains("failing")) << ready.describe();
  EXPECT_EQ(ready.json["storage"].value("ok", false), true) << ready.describe();
  EXPECT_EQ(ready.json["ollama"].value("ok", false), true) << ready.describe();
  EXPECT_EQ(ready.json["ollama"].value("version", ""), "0.5.7") << ready.describe();
  EXPECT_EQ(ready.json["ollama"].value("url", ""), ollama->url()) << ready.describe();
  EXPECT_TRUE(ready.json.contains("checkedAt")) << ready.describe();

  // Ollama goes away: the next probe notices, and /ready names it.
  ollama.reset();
  auto not_ready = poll("/ready", [](const HttpResult& r) { return r.status == 503; });
  EXPECT_EQ(not_ready.json.value("status", ""), "not_ready") << not_ready.describe();
  EXPECT_EQ(strings_of(not_ready.json["failing"]), std::vector<std::string>{"ollama"})
      << not_ready.describe();
  EXPECT_FALSE(not_ready.json["ollama"].value("error", "").empty()) << not_ready.describe();
  EXPECT_EQ(get("/health").status, 200) << "alive, only not ready";

  // It comes back on the same address: ready again.
  FakeOllamaOptions same_port;
  same_port.port = ollama_port;
  ollama = std::make_unique<FakeOllama>(same_port);
  poll("/ready", [](const HttpResult& r) { return r.status == 200; });
}

TEST_F(ServiceEndpoints, UnreachableOllamaMakesReady503AndModels502) {
  int dead_port = 0;
  {
    FakeOllama gone;  // a port where nothing listens: the fake's own, once it is gone
    dead_port = gone.port();
  }
  start_daemon_with_ollama("http://127.0.0.1:" + std::to_string(dead_port),
                           {{"TICKETAID_OLLAMA_PROBE_INTERVAL_S", "1"}});
  // Until the first probe ends nothing is known; then Ollama, and only Ollama, fails.
  auto res = poll("/ready", [](const HttpResult& r) {
    return r.json.is_object() && r.json.contains("checkedAt");
  });
  EXPECT_EQ(res.status, 503) << res.describe();
  EXPECT_EQ(res.json.value("status", ""), "not_ready") << res.describe();
  EXPECT_EQ(strings_of(res.json["failing"]), std::vector<std::string>{"ollama"}) << res.describe();
  EXPECT_EQ(res.json["storage"].value("ok", false), true) << res.describe();
  EXPECT_FALSE(res.json["ollama"].value("error", "").empty()) << res.describe();

  auto models = get("/api/models");
  EXPECT_EQ(models.status, 502) << models.describe();
  EXPECT_EQ(models.error_code(), "ollama_unavailable") << models.describe();
  EXPECT_EQ(get("/health").status, 200);
  EXPECT_TRUE(daemon_->running());
}

// --- /ws/status ---------------------------------------------------------------------

TEST_F(ServiceEndpoints, WsStatusHasItsShapeAndCountsConnectionsMessagesAndTheCache) {
  REQUIRE_FAKE_OLLAMA();
  start_daemon();
  auto res = get("/ws/status");
  ASSERT_EQ(res.status, 200) << res.describe();
  EXPECT_EQ(res.json.value("status", ""), "ready");
  // Exactly the counters of SPEC §3, all zero at first.
  for (const char* name :
       {"total_connections", "current_connections", "peak_connections", "total_messages",
        "active_generations", "queue_size", "cache_hits", "cache_misses"}) {
    ASSERT_TRUE(res.json["stats"].contains(name)) << name << ": " << res.describe();
    EXPECT_TRUE(res.json["stats"][name].is_number_integer()) << name;
    EXPECT_EQ(res.json["stats"][name], 0) << name;
  }

  auto browser = open_ticket("S-1");
  wait_for_stat("current_connections", 1);
  auto frames = ask_once(*browser, "Projector shows no input");
  ASSERT_EQ(frames.back()["type"], "done");
  auto after_miss = stats();
  EXPECT_EQ(after_miss.value("cache_misses", -1), 1) << after_miss.dump();
  EXPECT_EQ(after_miss.value("cache_hits", -1), 0) << after_miss.dump();
  EXPECT_EQ(after_miss.value("total_messages", -1), 1) << after_miss.dump();

  frames = ask_once(*browser, "Projector shows no input");
  ASSERT_EQ(frames.front()["type"], "cached");
  auto after_hit = stats();
  EXPECT_EQ(after_hit.value("cache_misses", -1), 1) << after_hit.dump();
  EXPECT_EQ(after_hit.value("cache_hits", -1), 1) << after_hit.dump();
  EXPECT_EQ(after_hit.value("total_messages", -1), 2) << after_hit.dump();
  EXPECT_EQ(after_hit.value("current_connections", -1), 1) << after_hit.dump();

  // A POST asking for an answer is a message too; a hit here.
  EXPECT_EQ(
      http_post(port(), "/api/tickets/S-1/ai-session", {{"ticketBody", "Projector shows no input"}})
          .status,
      200);
  auto after_post = stats();
  EXPECT_EQ(after_post.value("total_messages", -1), 3) << after_post.dump();
  EXPECT_EQ(after_post.value("cache_hits", -1), 2) << after_post.dump();

  auto second = open_ticket("S-2");
  wait_for_stat("current_connections", 2);
  EXPECT_EQ(stats().value("peak_connections", -1), 2);
  second->close();
  browser->close();
  wait_for_stat("current_connections", 0);
  auto closed = stats();
  EXPECT_EQ(closed.value("total_connections", -1), 2) << closed.dump();
  EXPECT_EQ(closed.value("peak_connections", -1), 2) << closed.dump();
  EXPECT_EQ(fake_.chat_requests(), 1);
}

TEST_F(ServiceEndpoints, WsStatusCountsActiveGenerationsAndTheQueue) {
  REQUIRE_FAKE_OLLAMA();
  FakeScript held;
  held.fault = FakeFault::stall_after_tokens;
  held.fault_after_tokens = 2;
  fake_.set_script(held);
  start_daemon({}, {{"TICKETAID_GENERATION_MAX_PARALLEL", "1"}});

  // One generation runs (held by the fake); a second ticket waits for the free slot.
  auto first = http_post(port(), "/api/tickets/Q-1/ai-session?wait=false",
                         {{"ticketBody", "Server room too warm"}});
  ASSERT_EQ(first.status, 202) << first.describe();
  ASSERT_TRUE(fake_.wait_for_chat_requests(1, 10s));
  wait_for_stat("active_generations", 1);
  EXPECT_EQ(stats().value("queue_size", -1), 0);
  auto second =
      http_post(port(), "/api/tickets/Q-2/ai-session?wait=false", {{"ticketBody", "UPS beeps"}});
  ASSERT_EQ(second.status, 202) << second.describe();
  wait_for_stat("queue_size", 1);
  EXPECT_EQ(stats().value("active_generations", -1), 2) << "running or queued";
  EXPECT_EQ(fake_.chat_requests(), 1);

  fake_.set_script(FakeScript{});
  fake_.release();
  wait_for_stat("active_generations", 0);
  EXPECT_EQ(stats().value("queue_size", -1), 0);
  EXPECT_EQ(stats().value("cache_misses", -1), 2);
  EXPECT_EQ(fake_.chat_requests(), 2);
}

// --- /api/models --------------------------------------------------------------------

TEST_F(ServiceEndpoints, ModelsListsOllamasModelsAndMarksTheDefault) {
  REQUIRE_FAKE_OLLAMA();
  fake_.set_models({"mistral:7b", "llama3.2:latest"});
  start_daemon();
  auto res = get("/api/models");
  ASSERT_EQ(res.status, 200) << res.describe();
  EXPECT_EQ(res.json.value("default", ""), "llama3.2");
  EXPECT_EQ(res.json.value("defaultInstalled", false), true);
  const auto& models = res.json["models"];
  ASSERT_EQ(models.size(), 2u) << res.describe();
  EXPECT_EQ(models[0].value("name", ""), "mistral:7b");
  EXPECT_EQ(models[0].value("default", true), false);
  EXPECT_EQ(models[1].value("name", ""), "llama3.2:latest");
  EXPECT_EQ(models[1].value("default", false), true) << "llama3.2 is llama3.2:latest";
  for (const auto& m : models) {
    EXPECT_GT(m.value("size", int64_t{0}), 0) << m.dump();
    EXPECT_FALSE(m.value("modifiedAt", "").empty()) << m.dump();
  }

  // A name listed without a tag is the same model.
  fake_.set_models({"llama3.2"});
  res = get("/api/models");
  ASSERT_EQ(res.status, 200) << res.describe();
  ASSERT_EQ(res.json["models"].size(), 1u);
  EXPECT_EQ(res.json["models"][0].value("default", false), true) << res.describe();
  EXPECT_EQ(res.json.value("defaultInstalled", false), true);

  // Without the default model, nothing is marked.
  fake_.set_models({"mistral:7b"});
  res = get("/api/models");
  ASSERT_EQ(res.status, 200) << res.describe();
  EXPECT_EQ(res.json.value("defaultInstalled", true), false) << res.describe();
  EXPECT_EQ(res.json["models"][0].value("default", true), false) << res.describe();
}

TEST_F(ServiceEndpoints, ModelsMarksAConfiguredTaggedDefault) {
  REQUIRE_FAKE_OLLAMA();
  fake_.set_models({"llama3.2:latest", "mistral:7b"});
  start_daemon({}, {{"TICKETAID_OLLAMA_MODEL", "mistral:7b"}});
  auto res = get("/api/models");
  ASSERT_EQ(res.status, 200) << res.describe();
  EXPECT_EQ(res.json.value("default", ""), "mistral:7b");
  EXPECT_EQ(res.json.value("defaultInstalled", false), true);
  EXPECT_EQ(res.json["models"][0].value("default", true), false) << res.describe();
  EXPECT_EQ(res.json["models"][1].value("default", false), true) << res.describe();
}

// --- /metrics -----------------------------------------------------------------------

TEST_F(ServiceEndpoints, MetricsParseAsPrometheusTextAndCountWhatHappened) {
  REQUIRE_FAKE_OLLAMA();
  start_daemon({}, {{"TICKETAID_OLLAMA_PROBE_INTERVAL_S", "1"}});
  auto fresh = scrape();
  EXPECT_EQ(sample(fresh, "ticketaid_cache_hits_total"), 0) << fresh.dump();
  EXPECT_EQ(sample(fresh, "ticketaid_cache_misses_total"), 0);
  EXPECT_EQ(sample(fresh, "ticketaid_time_to_first_token_seconds_count"), 0);
  EXPECT_EQ(family_type(fresh, "ticketaid_cache_hits_total"), "counter");
  EXPECT_EQ(family_type(fresh, "ticketaid_generations_total"), "counter");
  EXPECT_EQ(family_type(fresh, "ticketaid_errors_total"), "counter");
  EXPECT_EQ(family_type(fresh, "ticketaid_connections"), "gauge");
  EXPECT_EQ(family_type(fresh, "ticketaid_queue_depth"), "gauge");
  EXPECT_EQ(family_type(fresh, "ticketaid_time_to_first_token_seconds"), "histogram");
  EXPECT_EQ(family_type(fresh, "ticketaid_tokens_per_second"), "histogram");

  // One miss and one hit.
  auto browser = open_ticket("MX-1");
  ASSERT_EQ(ask_once(*browser, "Badge reader offline").back()["type"], "done");
  ASSERT_EQ(ask_once(*browser, "Badge reader offline").front()["type"], "cached");
  auto counted = scrape();
  EXPECT_EQ(sample(counted, "ticketaid_cache_hits_total"), 1) << counted.dump();
  EXPECT_EQ(sample(counted, "ticketaid_cache_misses_total"), 1);
  EXPECT_EQ(sample(counted, "ticketaid_generations_total{outcome=\"complete\"}"), 1);
  EXPECT_EQ(sample(counted, "ticketaid_generations_total{outcome=\"failed\"}"), 0);
  EXPECT_EQ(sample(counted, "ticketaid_time_to_first_token_seconds_count"), 1);
  EXPECT_EQ(sample(counted, "ticketaid_time_to_first_token_seconds_bucket{le=\"+Inf\"}"), 1);
  EXPECT_GE(sample(counted, "ticketaid_time_to_first_token_seconds_sum"), 0);
  EXPECT_EQ(sample(counted, "ticketaid_tokens_per_second_count"), 1);
  EXPECT_EQ(sample(counted, "ticketaid_response_tokens_total"), 4);
  EXPECT_EQ(sample(counted, "ticketaid_prompt_tokens_total"), 12);
  EXPECT_EQ(sample(counted, "ticketaid_messages_total"), 2);
  EXPECT_EQ(sample(counted, "ticketaid_connections"), 1);
  EXPECT_EQ(sample(counted, "ticketaid_connections_total"), 1);
  EXPECT_EQ(sample(counted, "ticketaid_generations_active"), 0);
  EXPECT_EQ(sample(counted, "ticketaid_queue_depth"), 0);

  // A malformed frame is answered with bad_request, and counted.
  ASSERT_TRUE(browser->send_text("not json"));
  auto error = browser->read_json();
  ASSERT_TRUE(error);
  ASSERT_EQ((*error)["code"], "bad_request");
  auto after_error = scrape();
  EXPECT_GE(sample(after_error, "ticketaid_errors_total{code=\"bad_request\"}"), 1)
      << after_error.dump();
  EXPECT_EQ(sample(after_error, "ticketaid_errors_total{code=\"ollama_unavailable\"}"), 0);

  // Ollama fails once: a failed generation and an ollama_unavailable error.
  FakeScript failing;
  failing.fault = FakeFault::http_500;
  fake_.set_script(failing);
  ASSERT_EQ(ask_once(*browser, "Badge reader still offline").back()["code"], "ollama_unavailable");
  auto after_failure = scrape();
  EXPECT_EQ(sample(after_failure, "ticketaid_generations_total{outcome=\"failed\"}"), 1);
  EXPECT_EQ(sample(after_failure, "ticketaid_errors_total{code=\"ollama_unavailable\"}"), 1);
  EXPECT_EQ(sample(after_failure, "ticketaid_cache_misses_total"), 2);

  // The probe's gauges, once Ollama and the store have answered it.
  EXPECT_TRUE(wait_until([&] {
    auto probed = scrape();
    return sample(probed, "ticketaid_ollama_up") == 1 && sample(probed, "ticketaid_store_up") == 1;
  }));
}

}  // namespace
}  // namespace ticketaid::testing
