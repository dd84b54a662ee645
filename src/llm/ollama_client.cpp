// LlmClient over Ollama's HTTP API (the only user of cpp-httplib).
//
// One chat is one blocking httplib request on the calling worker thread, read with a
// content receiver and split into NDJSON lines. A watchdog thread beside it enforces
// the first-token, idle-gap and total limits and carries out cancellation, both by
// stopping the client, which shuts the socket down: closing the connection is how
// Ollama is told to stop generating (it has no cancel endpoint).
#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "llm/llm_client.h"
#include "llm/ndjson.h"
#include "util/log.h"

namespace ticketaid {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr std::size_t kMaxErrorBody = 64 << 10;

std::string error_text_of(const std::string& body) {
  auto parsed = json::parse(body, nullptr, false);
  if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_string()) {
    return parsed["error"].get<std::string>();
  }
  return body.substr(0, 200);
}

std::optional<int64_t> optional_count(const json& line, const char* key) {
  auto it = line.find(key);
  if (it == line.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}

// Why the watchdog stopped a request, if it did.
enum class StopReason { none, first_token, idle, total, cancelled };

// Enforces the limits of one request while it runs. All members are guarded by
// mutex_ except the atomics, which the receiving thread updates per chunk.
class Watchdog {
 public:
  Watchdog(const ChatLimits& limits, CancelToken& cancel, httplib::Client& client)
      : limits_(limits), cancel_(cancel), client_(client), start_(Clock::now()) {
    last_activity_ns_ = start_.time_since_epoch().count();
    cancel_.on_cancel([this] {
      { std::lock_guard lock(mutex_); }
      wake_.notify_all();
    });
    thread_ = std::thread([this] { run(); });
  }
  ~Watchdog() {
    {
      std::lock_guard lock(mutex_);
      finished_ = true;
    }
    wake_.notify_all();
    thread_.join();
    cancel_.on_cancel(nullptr);
  }

  void on_bytes(bool is_token) {
    last_activity_ns_ = Clock::now().time_since_epoch().count();
    if (is_token && !got_token_.exchange(true)) {
      // The deadline moves from the first-token limit to the idle limit.
      { std::lock_guard lock(mutex_); }
      wake_.notify_all();
    }
  }
  StopReason reason() const {
    std::lock_guard lock(mutex_);
    return reason_;
  }

 private:
  Clock::time_point deadline() const {
    auto far = Clock::time_point::max();
    auto d = far;
    if (limits_.total.count() > 0) d = std::min(d, start_ + limits_.total);
    if (!got_token_) {
      if (limits_.first_token.count() > 0) d = std::min(d, start_ + limits_.first_token);
    } else if (limits_.idle.count() > 0) {
      auto last = Clock::time_point(Clock::duration(last_activity_ns_.load()));
      d = std::min(d, last + limits_.idle);
    }
    return d;
  }

  StopReason due(Clock::time_point now) const {
    if (cancel_.cancelled()) return StopReason::cancelled;
    if (limits_.total.count() > 0 && now >= start_ + limits_.total) return StopReason::total;
    if (now < deadline()) return StopReason::none;
    return got_token_ ? StopReason::idle : StopReason::first_token;
  }

  void run() {
    std::unique_lock lock(mutex_);
    while (!finished_) {
      if (reason_ == StopReason::none) {
        reason_ = due(Clock::now());
        if (reason_ == StopReason::none) {
          wake_.wait_until(lock, deadline());
          continue;
        }
      }
      // Stop until the request has returned: a stop issued while the socket is
      // still being connected does not reach it, so it is repeated.
      client_.stop();
      wake_.wait_for(lock, std::chrono::milliseconds(20));
    }
  }

  const ChatLimits limits_;
  CancelToken& cancel_;
  httplib::Client& client_;
  const Clock::time_point start_;
  std::atomic<Clock::rep> last_activity_ns_{0};
  std::atomic<bool> got_token_{false};
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool finished_ = false;
  StopReason reason_ = StopReason::none;
  std::thread thread_;
};

class OllamaClient final : public LlmClient {
 public:
  explicit OllamaClient(OllamaOptions options) : options_(std::move(options)) {}

  Result<ChatOutcome> chat(const ChatRequest& request, const ChatLimits& limits,
                           const std::function<void(const ChatDelta&)>& on_delta,
                           CancelToken& cancel) override;
  Result<std::vector<ModelInfo>> list_models() override;
  Result<std::string> version() override;

 private:
  std::unique_ptr<httplib::Client> make_client(std::chrono::seconds read_timeout) const {
    auto client = std::make_unique<httplib::Client>(options_.base_url);
    client->set_connection_timeout(options_.connect_timeout);
    client->set_read_timeout(read_timeout);
    client->set_keep_alive(false);
    return client;
  }
  Status transport_error(httplib::Error error) const {
    return Status::error(
        ErrorCode::ollama_unavailable,
        "Ollama is not reachable at " + options_.base_url + " (" + httplib::to_string(error) + ")");
  }
  Result<json> get_json(const std::string& path);

  OllamaOptions options_;
};

json chat_body(const ChatRequest& request) {
  json messages = json::array();
  for (const auto& m : request.messages) {
    messages.push_back({{"role", m.role}, {"content", m.content}});
  }
  json body = {{"model", request.model}, {"messages", std::move(messages)}, {"stream", true}};
  if (!request.options.empty()) body["options"] = request.options;
  body["think"] = request.think;
  return body;
}

// Consumes the NDJSON lines of one /api/chat stream.
class ChatStreamParser {
 public:
  ChatStreamParser(const std::function<void(const ChatDelta&)>& on_delta) : on_delta_(on_delta) {}

  // Returns false to stop reading (done, or an error recorded in status()).
  bool on_line(std::string_view line) {
    auto parsed = json::parse(line, nullptr, false);
    if (!parsed.is_object()) {
      status_ = Status::error(ErrorCode::ollama_unavailable,
                              "Ollama sent a line that is not a JSON object");
      return false;
    }
    if (auto err = parsed.find("error"); err != parsed.end()) {
      status_ = Status::error(ErrorCode::ollama_unavailable,
                              "Ollama failed during generation: " +
                                  (err->is_string() ? err->get<std::string>() : err->dump()));
      return false;
    }
    if (auto msg = parsed.find("message"); msg != parsed.end() && msg->is_object()) {
      emit(*msg, "thinking", true);
      emit(*msg, "content", false);
    }
    if (parsed.value("done", false)) {
      done_ = true;
      outcome_.model = parsed.value("model", std::string());
      outcome_.done_reason = parsed.value("done_reason", std::string());
      outcome_.prompt_tokens = optional_count(parsed, "prompt_eval_count");
      outcome_.response_tokens = optional_count(parsed, "eval_count");
      if (auto ns = optional_count(parsed, "total_duration"))
        outcome_.duration_ms = *ns / 1'000'000;
      return false;
    }
    return true;
  }
  bool done() const { return done_; }
  const Status& status() const { return status_; }
  ChatOutcome& outcome() { return outcome_; }
  bool saw_token() const { return saw_token_; }

 private:
  void emit(const json& message, const char* key, bool thinking) {
    auto it = message.find(key);
    if (it == message.end() || !it->is_string()) return;
    const auto& text = it->get_ref<const std::string&>();
    if (text.empty()) return;
    saw_token_ = true;
    ChatDelta delta;
    (thinking ? delta.thinking : delta.content) = text;
    on_delta_(delta);
  }

  const std::function<void(const ChatDelta&)>& on_delta_;
  Status status_;
  ChatOutcome outcome_;
  bool done_ = false;
  bool saw_token_ = false;
};

std::string seconds_text(std::chrono::milliseconds ms) {
  return std::to_string(ms.count() / 1000) + " s";
}

Result<ChatOutcome> OllamaClient::chat(const ChatRequest& request, const ChatLimits& limits,
                                       const std::function<void(const ChatDelta&)>& on_delta,
                                       CancelToken& cancel) {
  if (cancel.cancelled()) return cancel.reason();
  // The watchdog owns the time limits; the socket's own read timeout is only a backstop.
  auto backstop = std::chrono::duration_cast<std::chrono::seconds>(
      std::max({limits.first_token, limits.idle, limits.total}) + std::chrono::seconds(30));
  auto client = make_client(backstop);

  ChatStreamParser parser(on_delta);
  NdjsonSplitter splitter;
  int http_status = 0;
  std::string error_body;

  httplib::Request req;
  req.method = "POST";
  req.path = "/api/chat";
  req.body = chat_body(request).dump();
  req.headers.emplace("Content-Type", "application/json");
  req.headers.emplace("Accept", "application/x-ndjson");

  Watchdog watchdog(limits, cancel, *client);
  req.response_handler = [&](const httplib::Response& res) {
    http_status = res.status;
    watchdog.on_bytes(false);
    return true;
  };
  req.content_receiver = [&](const char* data, size_t size, uint64_t, uint64_t) {
    if (http_status != 200) {
      error_body.append(data,
                        std::min(size, kMaxErrorBody - std::min(kMaxErrorBody, error_body.size())));
      return true;
    }
    if (cancel.cancelled()) return false;
    watchdog.on_bytes(false);
    bool keep_going = splitter.feed({data, size}, [&](std::string_view line) {
      bool more = parser.on_line(line);
      if (parser.saw_token()) watchdog.on_bytes(true);
      return more;
    });
    return keep_going && !cancel.cancelled();
  };

  httplib::Response res;
  httplib::Error error = httplib::Error::Success;
  client->send(req, res, error);

  if (parser.done()) {
    if (parser.outcome().model.empty()) parser.outcome().model = request.model;
    return std::move(parser.outcome());
  }
  switch (watchdog.reason()) {
    case StopReason::cancelled:
      return cancel.reason();
    case StopReason::first_token:
      return Status::error(ErrorCode::timeout,
                           "Ollama sent no first token within " + seconds_text(limits.first_token));
    case StopReason::idle:
      return Status::error(ErrorCode::timeout,
                           "Ollama sent no token for " + seconds_text(limits.idle));
    case StopReason::total:
      return Status::error(ErrorCode::timeout,
                           "the generation did not finish within " + seconds_text(limits.total));
    case StopReason::none:
      break;
  }
  if (cancel.cancelled()) return cancel.reason();
  if (!parser.status().is_ok()) return parser.status();
  if (splitter.overflowed()) {
    return Status::error(ErrorCode::ollama_unavailable, "Ollama sent a line over 8 MiB");
  }
  if (http_status == 404) {
    return Status::error(ErrorCode::model_not_found,
                         "the model " + request.model +
                             " is not installed in Ollama (ollama pull " + request.model +
                             "): " + error_text_of(error_body));
  }
  if (http_status != 0 && http_status != 200) {
    return Status::error(
        ErrorCode::ollama_unavailable,
        "Ollama answered HTTP " + std::to_string(http_status) + ": " + error_text_of(error_body));
  }
  if (error != httplib::Error::Success && http_status == 0) return transport_error(error);
  return Status::error(ErrorCode::ollama_unavailable,
                       "Ollama closed the stream before the reply was done");
}

Result<json> OllamaClient::get_json(const std::string& path) {
  auto client = make_client(std::chrono::seconds(10));
  auto res = client->Get(path);
  if (!res) return transport_error(res.error());
  if (res->status != 200) {
    return Status::error(ErrorCode::ollama_unavailable, "Ollama answered HTTP " +
                                                            std::to_string(res->status) + " to " +
                                                            path + ": " + error_text_of(res->body));
  }
  auto parsed = json::parse(res->body, nullptr, false);
  if (!parsed.is_object()) {
    return Status::error(ErrorCode::ollama_unavailable, "Ollama sent no JSON object for " + path);
  }
  return parsed;
}

Result<std::vector<ModelInfo>> OllamaClient::list_models() {
  auto tags = get_json("/api/tags");
  if (!tags) return tags.status();
  std::vector<ModelInfo> models;
  for (const auto& m : tags->value("models", json::array())) {
    if (!m.is_object()) continue;
    models.push_back({m.value("name", std::string()), m.value("size", int64_t{0}),
                      m.value("modified_at", std::string())});
  }
  return models;
}

Result<std::string> OllamaClient::version() {
  auto v = get_json("/api/version");
  if (!v) return v.status();
  return v->value("version", std::string());
}

}  // namespace

std::unique_ptr<LlmClient> make_ollama_client(const OllamaOptions& options) {
  return std::make_unique<OllamaClient>(options);
}

}  // namespace ticketaid
