// Closed-loop answer streams (see run_streams in load_modes.h): each slot opens a
// connection, asks for a fresh ticket, reads the reply to its end, closes, and asks
// again until the window closes; then the replies in flight are read to their end.
//
// Thread-safety: a slot lives on one io_context, run by one thread; its counters
// belong to that thread and are merged by the main thread after the threads end.
#include <map>
#include <optional>

#include "bench/bench_net.h"
#include "bench/load_modes.h"

namespace ticketaid::bench {
namespace {

constexpr std::chrono::seconds kConnectTimeout{30};
constexpr std::chrono::milliseconds kRetryDelay{50};
constexpr const char* kSystemPrompt =
    "You are a helpdesk assistant. Answer the technician's ticket with clear, short steps.";

// What the slots of one thread count.
struct StreamCounts {
  Latencies ttft;
  Latencies total;     // send to the end of the reply ("done" or the done: true line)
  int64_t tokens = 0;  // tokens that arrived inside the window
  int64_t tokens_total = 0;
  int64_t requests = 0;  // replies that ended inside the window
  int64_t started = 0;
  int64_t queued_frames = 0;
  std::map<std::string, int64_t> errors;
};

// Fixed for the run and shared, read-only, by every slot.
struct StreamPlan {
  tcp::endpoint endpoint;
  std::string host_header;
  Window window;
  std::string run_id;
  std::string model;
  std::atomic<int>* live = nullptr;  // slots still running
};

std::string ticket_id(const std::string& run, int slot, int64_t n) {
  return "b" + run + "-" + std::to_string(slot) + "-" + std::to_string(n);
}

std::string ticket_body(const std::string& id) {
  return "Ticket " + id +
         ": the printer on floor 3 prints blank pages since this morning's driver update; the "
         "queue shows every job as completed. What should the technician check first?";
}

// One closed-loop client. Subclasses open the connection, send the request (calling
// mark_sent() as the send starts) and report tokens, the end and failures.
class StreamSlot : public std::enable_shared_from_this<StreamSlot> {
 public:
  StreamSlot(asio::io_context& io, const StreamPlan& plan, StreamCounts& counts, int index)
      : io_(io), plan_(plan), counts_(counts), index_(index), retry_(io) {}
  virtual ~StreamSlot() = default;
  StreamSlot(const StreamSlot&) = delete;
  StreamSlot& operator=(const StreamSlot&) = delete;

  void start() { next(); }

 protected:
  virtual void begin_request() = 0;
  virtual void close_connection() = 0;

  void mark_sent() { sent_ = Clock::now(); }

  void on_token() {
    const auto now = Clock::now();
    if (!got_token_) {
      got_token_ = true;
      if (plan_.window.contains(sent_)) counts_.ttft.add(micros(sent_, now));
    }
    ++counts_.tokens_total;
    if (plan_.window.contains(now)) ++counts_.tokens;
  }

  void on_end() {
    const auto now = Clock::now();
    if (plan_.window.contains(now)) ++counts_.requests;
    if (plan_.window.contains(sent_)) counts_.total.add(micros(sent_, now));
    close_connection();
    asio::post(io_, [self = shared_from_this()] { self->next(); });
  }

  void on_failure(const std::string& what) {
    ++counts_.errors[what];
    close_connection();
    retry_.expires_after(kRetryDelay);
    retry_.async_wait([self = shared_from_this()](error_code) { self->next(); });
  }

  asio::io_context& io_;
  const StreamPlan& plan_;
  StreamCounts& counts_;
  std::string ticket_;

 private:
  void next() {
    if (Clock::now() >= plan_.window.end) {
      plan_.live->fetch_sub(1);
      return;
    }
    ticket_ = ticket_id(plan_.run_id, index_, requests_++);
    got_token_ = false;
    ++counts_.started;
    begin_request();
  }

  const int index_;
  int64_t requests_ = 0;
  asio::steady_timer retry_;
  Clock::time_point sent_;
  bool got_token_ = false;
};

// Through ticketaid: a WebSocket per ticket, as a browser opens one per ticket page.
class WsSlot final : public StreamSlot {
 public:
  using StreamSlot::StreamSlot;

 private:
  void begin_request() override {
    ws_.emplace(io_);
    auto& tcp = beast::get_lowest_layer(*ws_);
    tcp.expires_after(kConnectTimeout);
    tcp.async_connect(plan_.endpoint,
                      [self = shared_from_this(), this](error_code ec) { on_connect(ec); });
  }

  void on_connect(error_code ec) {
    if (ec) return on_failure(error_name("connect", ec));
    beast::get_lowest_layer(*ws_).expires_never();
    ws_->set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
    ws_->async_handshake(plan_.host_header, "/api/websocket/chat/" + ticket_,
                         [self = shared_from_this(), this](error_code ec) { on_handshake(ec); });
  }

  void on_handshake(error_code ec) {
    if (ec) return on_failure(error_name("handshake", ec));
    message_ = json{{"ticketBody", ticket_body(ticket_)}}.dump();
    ws_->text(true);
    mark_sent();
    ws_->async_write(asio::buffer(message_),
                     [self = shared_from_this(), this](error_code ec, std::size_t) {
                       if (ec) return on_failure(error_name("write", ec));
                       read();
                     });
  }

  void read() {
    buffer_.clear();
    ws_->async_read(buffer_,
                    [self = shared_from_this(), this](error_code ec, std::size_t) { on_read(ec); });
  }

  void on_read(error_code ec) {
    if (ec) return on_failure(error_name("read", ec));
    const std::string_view frame = buffer_view(buffer_);
    const std::string_view type = frame_type(frame);
    if (type == "stream") {
      on_token();
    } else if (type == "done") {
      return on_end();
    } else if (type == "error") {
      return on_failure("error frame: " + std::string(json_string_field(frame, "\"code\"")));
    } else if (type == "queued") {
      ++counts_.queued_frames;
    } else if (type == "cached") {
      ++counts_.errors["cached reply to a fresh ticket"];
    }
    read();
  }

  void close_connection() override {
    if (!ws_) return;
    error_code ignored;
    beast::get_lowest_layer(*ws_).socket().close(ignored);
  }

  std::optional<websocket::stream<beast::tcp_stream>> ws_;
  beast::flat_buffer buffer_;
  std::string message_;
};

// Straight to Ollama: POST /api/chat, one connection per request as ticketaid does.
class HttpSlot final : public StreamSlot {
 public:
  using StreamSlot::StreamSlot;

 private:
  void begin_request() override {
    stream_.emplace(io_);
    stream_->expires_after(kConnectTimeout);
    stream_->async_connect(plan_.endpoint,
                           [self = shared_from_this(), this](error_code ec) { on_connect(ec); });
  }

  void on_connect(error_code ec) {
    if (ec) return on_failure(error_name("connect", ec));
    json body = {{"model", plan_.model},
                 {"messages", json::array({{{"role", "system"}, {"content", kSystemPrompt}},
                                           {{"role", "user"}, {"content", ticket_body(ticket_)}}})},
                 {"stream", true},
                 {"options", {{"num_predict", 1024}}},
                 {"think", false}};
    request_ = {http::verb::post, "/api/chat", 11};
    request_.set(http::field::host, plan_.host_header);
    request_.set(http::field::content_type, "application/json");
    request_.set(http::field::accept, "application/x-ndjson");
    request_.keep_alive(false);
    request_.body() = body.dump();
    request_.prepare_payload();
    parser_.emplace();
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    // Not eager: an eager parser asks for more input until the whole reply is in,
    // which would hold every token back until the end.
    parser_->eager(false);
    buffer_.clear();
    stream_->expires_never();  // a reply may take long; the window bounds the run
    mark_sent();
    http::async_write(*stream_, request_,
                      [self = shared_from_this(), this](error_code ec, std::size_t) {
                        if (ec) return on_failure(error_name("write", ec));
                        read();
                      });
  }

  void read() {
    http::async_read_some(
        *stream_, buffer_, *parser_,
        [self = shared_from_this(), this](error_code ec, std::size_t) { on_read(ec); });
  }

  void on_read(error_code ec) {
    if (ec) return on_failure(error_name("read", ec));
    if (parser_->is_header_done() && parser_->get().result_int() != 200) {
      return on_failure("ollama answered HTTP " + std::to_string(parser_->get().result_int()));
    }
    std::string& body = parser_->get().body();
    std::size_t pos = 0;
    bool done = false;
    bool failed = false;
    for (auto nl = body.find('\n'); nl != std::string::npos; nl = body.find('\n', pos)) {
      const std::string_view line(body.data() + pos, nl - pos);
      pos = nl + 1;
      if (line.starts_with("{\"error\"")) {
        failed = true;
      } else if (line.find("\"done\":true") != std::string_view::npos) {
        done = true;
      } else if (const auto at = line.find("\"content\":\"");
                 at != std::string_view::npos && at + 11 < line.size() && line[at + 11] != '"') {
        on_token();
      }
    }
    body.erase(0, pos);
    if (failed) return on_failure("error line from ollama");
    if (done) return on_end();
    if (parser_->is_done()) return on_failure("reply ended without done");
    read();
  }

  void close_connection() override {
    if (!stream_) return;
    error_code ignored;
    stream_->socket().close(ignored);
  }

  std::optional<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  std::optional<http::response_parser<http::string_body>> parser_;
};

}  // namespace

json run_streams(const StreamOptions& options) {
  const Timing& timing = options.timing;
  IoPool pool(timing.threads);
  std::atomic<int> live{options.streams};
  StreamPlan plan;
  plan.endpoint = resolve(options.target);
  plan.host_header = options.target.host_header();
  plan.run_id = timing.run_id;
  plan.model = options.model;
  plan.live = &live;
  const auto start = Clock::now();
  plan.window = {start + seconds_of(timing.warmup_s),
                 start + seconds_of(timing.warmup_s + timing.duration_s)};

  std::vector<StreamCounts> counts(static_cast<std::size_t>(pool.size()));
  for (int i = 0; i < options.streams; ++i) {
    auto& io = pool.at(i);
    auto& c = counts[static_cast<std::size_t>(i % pool.size())];
    std::shared_ptr<StreamSlot> slot;
    if (options.direct) {
      slot = std::make_shared<HttpSlot>(io, plan, c, i);
    } else {
      slot = std::make_shared<WsSlot>(io, plan, c, i);
    }
    asio::post(io, [slot] { slot->start(); });
  }

  CpuMeter cpu(timing.pids);
  pool.start();
  std::this_thread::sleep_until(plan.window.start);
  cpu.start();
  std::this_thread::sleep_until(plan.window.end);
  json cpu_json = cpu.stop();
  const auto drain_end = plan.window.end + seconds_of(timing.drain_s);
  while (live.load() > 0 && Clock::now() < drain_end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const int unfinished = live.load();
  if (unfinished > 0) pool.stop();
  pool.join();

  StreamCounts total;
  for (const auto& c : counts) {
    total.ttft.merge(c.ttft);
    total.total.merge(c.total);
    total.tokens += c.tokens;
    total.tokens_total += c.tokens_total;
    total.requests += c.requests;
    total.started += c.started;
    total.queued_frames += c.queued_frames;
    for (const auto& [what, n] : c.errors) {
      total.errors[what] += n;
    }
  }
  int64_t error_count = 0;
  for (const auto& [what, n] : total.errors) {
    error_count += n;
  }
  const double window_s = plan.window.seconds();
  json out;
  out["target"] = options.direct ? "ollama" : "ticketaid";
  out["streams"] = options.streams;
  out["threads"] = pool.size();
  out["warmup_s"] = timing.warmup_s;
  out["duration_s"] = window_s;
  out["ttft"] = total.ttft.summary();
  out["total"] = total.total.summary();
  out["tokens"] = total.tokens;
  out["tokens_per_s"] = static_cast<double>(total.tokens) / window_s;
  out["tokens_total"] = total.tokens_total;
  out["requests"] = total.requests;
  out["requests_per_s"] = static_cast<double>(total.requests) / window_s;
  out["requests_started"] = total.started;
  out["queued_frames"] = total.queued_frames;
  out["errors"] = total.errors;
  out["error_count"] = error_count;
  out["unfinished"] = unfinished;
  out["cpu"] = cpu_json;
  return out;
}

}  // namespace ticketaid::bench
