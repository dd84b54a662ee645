// The fake Ollama server: an httplib::Server on 127.0.0.1 whose /api/chat replays a
// FakeScript the way Ollama streams a reply (see fake_ollama.h for the contract).
//
// Each connection is answered on one thread of the server's pool. A streamed reply
// is written by a ChatStream from inside httplib's chunked content provider; every
// delay in it is an interruptible wait on the shared condition variable that also
// watches the connection, so release(), the destructor and a client that hangs up
// all end it promptly.
//
// Thread-safety: Impl's state is guarded by mutex_; cv_ is notified on every change
// (a request counted, a client abort, release(), stopping). Plain delays (between
// tokens, before the first one) do not use cv_: they poll() the connection and
// stop_event, so that hundreds of streams pausing between tokens neither wake one
// another on every notify nor every few milliseconds (the benchmarks run 200 such
// streams on two cores beside the daemon they measure).
#include "support/fake_ollama.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include <httplib.h>

namespace ticketaid::testing {
namespace {

using Clock = std::chrono::steady_clock;
using OrderedJson = nlohmann::ordered_json;

constexpr const char* kJsonType = "application/json; charset=utf-8";
constexpr const char* kNdjsonType = "application/x-ndjson";
constexpr const char* kBusyMessage =
    "server busy, please try again.  maximum pending requests exceeded";
constexpr const char* kRunnerFailedMessage = "llama runner process has terminated: exit status 2";
constexpr const char* kMidStreamMessage =
    "an error was encountered while running the model: unexpected EOF";
// How often a wait looks at the connection for a client that hung up.
constexpr std::chrono::milliseconds kPeerCheckInterval{10};

// The current time as Go's RFC3339Nano: "2024-07-01T12:00:00.123456789Z".
std::string rfc3339_now() {
  const auto now = std::chrono::system_clock::now();
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch());
  const time_t seconds = static_cast<time_t>(ns.count() / 1'000'000'000);
  const long fraction = static_cast<long>(ns.count() % 1'000'000'000);
  tm utc{};
  gmtime_r(&seconds, &utc);
  char date[32];
  strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &utc);
  char digits[16];
  snprintf(digits, sizeof(digits), "%09ld", fraction);
  std::string frac(digits);
  while (!frac.empty() && frac.back() == '0') {
    frac.pop_back();
  }
  return std::string(date) + (frac.empty() ? "" : "." + frac) + "Z";
}

// Serializes as Go's json.Marshal does: HTML-sensitive characters and the JavaScript
// line separators are escaped. They can only occur inside strings, so plain
// replacement keeps the document valid.
std::string go_json(const OrderedJson& value) {
  const std::string raw = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out;
  out.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i];
    if (c == '<') {
      out += "\\u003c";
    } else if (c == '>') {
      out += "\\u003e";
    } else if (c == '&') {
      out += "\\u0026";
    } else if (c == '\xE2' && i + 2 < raw.size() && raw[i + 1] == '\x80' &&
               (raw[i + 2] == '\xA8' || raw[i + 2] == '\xA9')) {
      out += raw[i + 2] == '\xA8' ? "\\u2028" : "\\u2029";
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

// "llama3.2" and "llama3.2:latest" name the same model; "ns/model" keeps its slash.
std::string canonical_model(std::string name) {
  const auto slash = name.rfind('/');
  const auto tag = name.find(':', slash == std::string::npos ? 0 : slash + 1);
  if (tag == std::string::npos) name += ":latest";
  return name;
}

// A stable, digest-shaped hex string for a model name.
std::string fake_digest(const std::string& name) {
  static constexpr char kHex[] = "0123456789abcdef";
  uint64_t h = std::hash<std::string>{}(name);
  std::string out;
  while (out.size() < 64) {
    h = h * 6364136223846793005ULL + 1442695040888963407ULL;
    out += kHex[(h >> 60) & 0xF];
  }
  return out;
}

// The file descriptor of this process's IPv4 socket on local_port whose peer is on
// remote_port, or of the listening socket on local_port when remote_port is 0; -1
// when there is none. httplib hands out neither descriptor, and a client that hangs
// up before the headers go out is only visible on the connection's socket.
int find_socket_fd(int local_port, int remote_port) {
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    int fd = -1;
    try {
      fd = std::stoi(it->path().filename().string());
    } catch (const std::exception&) {
      continue;
    }
    sockaddr_storage local{};
    socklen_t local_len = sizeof(local);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0) continue;
    if (local.ss_family != AF_INET) continue;
    if (ntohs(reinterpret_cast<const sockaddr_in*>(&local)->sin_port) != local_port) continue;
    if (remote_port == 0) {
      int listening = 0;
      socklen_t len = sizeof(listening);
      if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening) {
        return fd;
      }
      continue;
    }
    sockaddr_storage peer{};
    socklen_t peer_len = sizeof(peer);
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) continue;
    if (ntohs(reinterpret_cast<const sockaddr_in*>(&peer)->sin_port) == remote_port) return fd;
  }
  return -1;
}

// Whether the client closed its side of the connection. The request has been read
// whole, so a readable socket with nothing to read means end of stream.
bool peer_closed(int fd) {
  if (fd < 0) return false;
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  if (poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return true;
  if (p.revents & POLLIN) {
    char c;
    return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
  }
  return false;
}

void reply_json(httplib::Response& res, int status, const OrderedJson& body) {
  res.status = status;
  res.set_content(go_json(body), kJsonType);
}

void reply_error(httplib::Response& res, int status, const std::string& message) {
  reply_json(res, status, OrderedJson{{"error", message}});
}

// Adds a counter the way Ollama does: zero values are left out.
void put_nonzero(OrderedJson& obj, const char* key, int64_t value) {
  if (value != 0) obj[key] = value;
}

enum class WaitEnd { elapsed, released, stopping, client_gone };

}  // namespace

struct FakeOllama::Impl {
  Impl() : stop_event(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~Impl() {
    if (stop_event >= 0) close(stop_event);
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  httplib::Server server;
  std::thread thread;
  int port = 0;
  const int stop_event;  // readable once stop() has begun

  mutable std::mutex mutex;
  mutable std::condition_variable cv;
  std::vector<std::string> models{"llama3.2"};
  std::string version = "0.5.7";
  FakeScript script;
  uint64_t release_epoch = 0;  // incremented by release()
  bool stopping = false;
  int chat_requests = 0;
  int active_chats = 0;
  int client_aborts = 0;
  std::vector<ReceivedRequest> requests;
  nlohmann::json last_chat_body;

  void start(const FakeOllamaOptions& options);
  void stop();

  void record(const httplib::Request& req, const nlohmann::json& body) {
    std::lock_guard lock(mutex);
    requests.push_back({req.method, req.path, body});
  }
  void note_client_abort() {
    {
      std::lock_guard lock(mutex);
      ++client_aborts;
    }
    cv.notify_all();
  }
  bool has_model(const std::string& name) const {
    std::lock_guard lock(mutex);
    const auto wanted = canonical_model(name);
    return std::any_of(models.begin(), models.end(),
                       [&](const std::string& m) { return canonical_model(m) == wanted; });
  }

  // Waits until the deadline, or (when epoch is given) until release() is called
  // after that epoch, whichever is first; stopping and a client that hung up on fd
  // end the wait early.
  WaitEnd wait(Clock::time_point deadline, const uint64_t* epoch, int fd) const {
    if (epoch == nullptr) return sleep_until(deadline, fd);
    std::unique_lock lock(mutex);
    while (true) {
      if (stopping) return WaitEnd::stopping;
      if (epoch != nullptr && release_epoch > *epoch) return WaitEnd::released;
      const auto now = Clock::now();
      if (now >= deadline) return WaitEnd::elapsed;
      if (peer_closed(fd)) return WaitEnd::client_gone;
      const auto slice = now + kPeerCheckInterval;
      cv.wait_until(lock, std::min(deadline, slice));
    }
  }

  // A wait that release() does not end: one poll() on the connection and the stop
  // event until the deadline.
  WaitEnd sleep_until(Clock::time_point deadline, int fd) const {
    while (true) {
      const auto now = Clock::now();
      const auto left =
          deadline > now ? std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count() : 0;
      pollfd fds[2] = {{stop_event, POLLIN, 0}, {fd, POLLRDHUP, 0}};  // fd -1 is ignored
      ::poll(fds, 2, static_cast<int>(std::min<int64_t>(left, std::numeric_limits<int>::max())));
      if (fds[0].revents != 0) return WaitEnd::stopping;
      if (fds[1].revents != 0 && peer_closed(fd)) return WaitEnd::client_gone;
      if (Clock::now() >= deadline) return WaitEnd::elapsed;
    }
  }

  void handle_tags(const httplib::Request& req, httplib::Response& res);
  void handle_version(const httplib::Request& req, httplib::Response& res);
  void handle_chat(const httplib::Request& req, httplib::Response& res);
};

namespace {

// Keeps active_chats counted while a /api/chat request is being answered.
class ActiveChat {
 public:
  ActiveChat(std::mutex& mutex, std::condition_variable& cv, int& counter)
      : mutex_(mutex), cv_(cv), counter_(counter) {}
  ~ActiveChat() {
    {
      std::lock_guard lock(mutex_);
      --counter_;
    }
    cv_.notify_all();
  }
  ActiveChat(const ActiveChat&) = delete;
  ActiveChat& operator=(const ActiveChat&) = delete;

 private:
  std::mutex& mutex_;
  std::condition_variable& cv_;
  int& counter_;
};

// One /api/chat reply, from the first line to the last.
class ChatStream {
 public:
  using Wait = std::function<WaitEnd(Clock::time_point, const uint64_t*, int)>;
  using Line = std::function<std::string()>;

  ChatStream(FakeScript script, std::string model, uint64_t epoch, int fd,
             std::shared_ptr<ActiveChat> active, Wait wait, std::function<void()> on_client_abort)
      : script_(std::move(script)),
        model_(std::move(model)),
        epoch_(epoch),
        fd_(fd),
        active_(std::move(active)),
        wait_(std::move(wait)),
        on_client_abort_(std::move(on_client_abort)),
        started_(Clock::now()) {}

  // The content tokens written before the fault takes effect.
  std::size_t tokens_before_fault() const {
    switch (script_.fault) {
      case FakeFault::error_mid_stream:
      case FakeFault::drop_mid_stream:
      case FakeFault::stall_after_tokens:
        return static_cast<std::size_t>(std::clamp<int64_t>(
            script_.fault_after_tokens, 0, static_cast<int64_t>(script_.tokens.size())));
      default:
        return script_.tokens.size();
    }
  }

  // Writes the streamed reply into sink; false ends the connection without the
  // terminating chunk (a drop, a client gone, or the server stopping).
  bool run(httplib::DataSink& sink) {
    if (ran_) return false;
    ran_ = true;
    const bool clean = stream(sink);
    // No longer active before the client can see the end of the reply.
    active_.reset();
    if (clean) sink.done();
    return clean;
  }

  // The reply's lines, the fault and the rest; false for a connection to be closed.
  bool stream(httplib::DataSink& sink) {
    const std::size_t cut = tokens_before_fault();
    std::vector<Line> first;
    for (const auto& t : script_.thinking) {
      first.push_back([this, &t] { return line("", t); });
    }
    for (std::size_t i = 0; i < cut; ++i) {
      first.push_back([this, i] { return line(script_.tokens[i], ""); });
    }
    if (script_.fault == FakeFault::error_mid_stream) {
      first.push_back([] { return go_json(OrderedJson{{"error", kMidStreamMessage}}) + "\n"; });
    }
    if (!emit_all(sink, first)) return false;

    switch (script_.fault) {
      case FakeFault::error_mid_stream:
        return true;
      case FakeFault::drop_mid_stream:
        return false;
      case FakeFault::stall_after_tokens: {
        const WaitEnd end = wait_(Clock::time_point::max(), &epoch_, fd_);
        if (end != WaitEnd::released) return gone(end);
        break;
      }
      default:
        break;
    }

    std::vector<Line> rest;
    for (std::size_t i = cut; i < script_.tokens.size(); ++i) {
      rest.push_back([this, i] { return line(script_.tokens[i], ""); });
    }
    rest.push_back([this] { return done_line(); });
    return emit_all(sink, rest);
  }

  // The reply as one object, for "stream": false.
  OrderedJson whole() const {
    std::string content;
    std::string thinking;
    for (const auto& t : script_.tokens) {
      content += t;
    }
    for (const auto& t : script_.thinking) {
      thinking += t;
    }
    OrderedJson message{{"role", "assistant"}, {"content", content}};
    if (!thinking.empty()) message["thinking"] = thinking;
    OrderedJson out{{"model", model_}, {"created_at", rfc3339_now()}, {"message", message}};
    add_done_fields(out);
    return out;
  }

  // Counts a client that hung up (once) and returns false for the provider.
  bool gone(WaitEnd end) {
    if (end == WaitEnd::client_gone && !aborted_) {
      aborted_ = true;
      on_client_abort_();
    }
    return false;
  }

 private:
  std::string line(const std::string& content, const std::string& thinking) const {
    OrderedJson message{{"role", "assistant"}, {"content", content}};
    if (!thinking.empty()) message["thinking"] = thinking;
    OrderedJson out{
        {"model", model_}, {"created_at", rfc3339_now()}, {"message", message}, {"done", false}};
    return go_json(out) + "\n";
  }

  void add_done_fields(OrderedJson& out) const {
    const auto total =
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - started_);
    const auto load =
        std::chrono::duration_cast<std::chrono::nanoseconds>(script_.first_token_delay);
    const int64_t eval_count =
        script_.eval_count > 0 ? script_.eval_count : static_cast<int64_t>(script_.tokens.size());
    out["done_reason"] = script_.done_reason;
    out["done"] = true;
    put_nonzero(out, "total_duration", std::max<int64_t>(total.count(), 1));
    put_nonzero(out, "load_duration", load.count());
    put_nonzero(out, "prompt_eval_count", script_.prompt_eval_count);
    put_nonzero(out, "prompt_eval_duration", script_.prompt_eval_count > 0 ? 1'500'000 : 0);
    put_nonzero(out, "eval_count", eval_count);
    put_nonzero(out, "eval_duration",
                eval_count > 0 ? std::max<int64_t>(total.count() - load.count(), 1) : 0);
  }

  std::string done_line() const {
    OrderedJson out{{"model", model_},
                    {"created_at", rfc3339_now()},
                    {"message", {{"role", "assistant"}, {"content", ""}}}};
    add_done_fields(out);
    return go_json(out) + "\n";
  }

  // Writes each line when its time comes (so that created_at is the time it was
  // sent), or, with split_writes_at, all of them serialized at once and re-cut into
  // pieces of that many bytes; token_delay passes before every write but the first.
  bool emit_all(httplib::DataSink& sink, const std::vector<Line>& lines) {
    if (script_.split_writes_at == 0) {
      for (const auto& render : lines) {
        if (!pause() || !write(sink, render())) return false;
      }
      return true;
    }
    std::string body;
    for (const auto& render : lines) {
      body += render();
    }
    for (std::size_t at = 0; at < body.size(); at += script_.split_writes_at) {
      if (!pause() || !write(sink, body.substr(at, script_.split_writes_at))) return false;
    }
    return true;
  }

  bool pause() {
    if (!wrote_any_ || script_.token_delay.count() == 0) return true;
    const WaitEnd end = wait_(Clock::now() + script_.token_delay, nullptr, fd_);
    return end == WaitEnd::elapsed || gone(end);
  }

  bool write(httplib::DataSink& sink, const std::string& piece) {
    if (piece.empty()) return true;  // an empty write would end httplib's stream
    wrote_any_ = true;
    if (peer_closed(fd_) || !sink.is_writable() || !sink.write(piece.data(), piece.size())) {
      return gone(WaitEnd::client_gone);
    }
    return true;
  }

  FakeScript script_;
  std::string model_;
  uint64_t epoch_;
  int fd_;
  std::shared_ptr<ActiveChat> active_;
  Wait wait_;
  std::function<void()> on_client_abort_;
  Clock::time_point started_;
  bool ran_ = false;
  bool wrote_any_ = false;
  bool aborted_ = false;
};

}  // namespace

void FakeOllama::Impl::handle_tags(const httplib::Request& req, httplib::Response& res) {
  record(req, nullptr);
  std::vector<std::string> names;
  {
    std::lock_guard lock(mutex);
    names = models;
  }
  OrderedJson list = OrderedJson::array();
  for (const auto& name : names) {
    list.push_back({{"name", name},
                    {"model", name},
                    {"modified_at", "2025-01-15T09:30:00.000000000Z"},
                    {"size", 2019393189},
                    {"digest", fake_digest(name)},
                    {"details",
                     {{"parent_model", ""},
                      {"format", "gguf"},
                      {"family", "llama"},
                      {"families", {"llama"}},
                      {"parameter_size", "3.2B"},
                      {"quantization_level", "Q4_K_M"}}}});
  }
  reply_json(res, 200, OrderedJson{{"models", list}});
}

void FakeOllama::Impl::handle_version(const httplib::Request& req, httplib::Response& res) {
  record(req, nullptr);
  std::lock_guard lock(mutex);
  reply_json(res, 200, OrderedJson{{"version", version}});
}

void FakeOllama::Impl::handle_chat(const httplib::Request& req, httplib::Response& res) {
  nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
  if (body.is_discarded()) body = nullptr;
  FakeScript current;
  uint64_t epoch = 0;
  {
    std::lock_guard lock(mutex);
    requests.push_back({req.method, req.path, body});
    last_chat_body = body;
    ++chat_requests;
    ++active_chats;
    current = script;
    epoch = release_epoch;
  }
  cv.notify_all();
  auto active = std::make_shared<ActiveChat>(mutex, cv, active_chats);

  if (!body.is_object()) return reply_error(res, 400, "invalid request body");
  const auto model_it = body.find("model");
  if (model_it == body.end() || !model_it->is_string() || model_it->get<std::string>().empty()) {
    return reply_error(res, 400, "model is required");
  }
  const std::string model = model_it->get<std::string>();
  const auto messages = body.find("messages");
  if (messages != body.end() && !messages->is_array() && !messages->is_null()) {
    return reply_error(res, 400, "messages must be an array");
  }
  if (!has_model(model)) {
    return reply_error(res, 404, "model \"" + model + "\" not found, try pulling it first");
  }
  if (current.fault == FakeFault::http_503) return reply_error(res, 503, kBusyMessage);

  // Everything from here on happens before any byte of the response is written:
  // Ollama sends nothing, not even headers, until the first token exists.
  const int fd = find_socket_fd(req.local_port, req.remote_port);
  auto chat = std::make_shared<ChatStream>(
      current, model, epoch, fd, active,
      [this](Clock::time_point deadline, const uint64_t* e, int f) { return wait(deadline, e, f); },
      [this] { note_client_abort(); });
  auto held = [&](WaitEnd end) {
    chat->gone(end);
    reply_error(res, 503, end == WaitEnd::stopping ? "fake ollama is stopping" : "client gone");
  };
  if (current.fault == FakeFault::hang_before_headers) {
    const WaitEnd end = wait(Clock::time_point::max(), &epoch, fd);
    if (end != WaitEnd::released) return held(end);
  }
  if (current.first_token_delay.count() > 0) {
    const WaitEnd end = wait(Clock::now() + current.first_token_delay, nullptr, fd);
    if (end != WaitEnd::elapsed) return held(end);
  }
  if (current.fault == FakeFault::http_500) return reply_error(res, 500, kRunnerFailedMessage);

  const auto stream_it = body.find("stream");
  const bool stream = stream_it == body.end() || !stream_it->is_boolean() || stream_it->get<bool>();
  if (stream) {
    res.status = 200;
    res.set_chunked_content_provider(
        kNdjsonType,
        [chat](std::size_t /*offset*/, httplib::DataSink& sink) { return chat->run(sink); });
    return;
  }

  // "stream": false: the whole reply once generation is over.
  const auto generation = current.token_delay * static_cast<int64_t>(current.tokens.size());
  if (generation.count() > 0) {
    const WaitEnd end = wait(Clock::now() + generation, nullptr, fd);
    if (end != WaitEnd::elapsed) return held(end);
  }
  switch (current.fault) {
    case FakeFault::error_mid_stream:
      return reply_error(res, 500, kMidStreamMessage);
    case FakeFault::drop_mid_stream: {
      // Announce a body, then close the connection before sending it.
      res.status = 200;
      res.set_content_provider(
          1024, kJsonType,
          [active](std::size_t, std::size_t, httplib::DataSink&) { return false; });
      return;
    }
    case FakeFault::stall_after_tokens: {
      const WaitEnd end = wait(Clock::time_point::max(), &epoch, fd);
      if (end != WaitEnd::released) return held(end);
      break;
    }
    default:
      break;
  }
  reply_json(res, 200, chat->whole());
}

void FakeOllama::Impl::start(const FakeOllamaOptions& options) {
  const std::size_t threads = static_cast<std::size_t>(std::max(options.threads, 1));
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // Bounds how long the destructor waits for idle keep-alive connections.
  server.set_keep_alive_timeout(1);

  server.Get("/", [this](const httplib::Request& req, httplib::Response& res) {
    record(req, nullptr);
    res.set_content("Ollama is running", "text/plain; charset=utf-8");
  });
  server.Get("/api/tags", [this](const auto& req, auto& res) { handle_tags(req, res); });
  server.Get("/api/version", [this](const auto& req, auto& res) { handle_version(req, res); });
  server.Post("/api/chat", [this](const auto& req, auto& res) { handle_chat(req, res); });
  const auto not_found = [this](const httplib::Request& req, httplib::Response& res) {
    nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
    record(req, body.is_discarded() ? nlohmann::json() : body);
    res.status = 404;
    res.set_content("404 page not found", "text/plain");
  };
  server.Get(".*", not_found);
  server.Post(".*", not_found);
  server.Put(".*", not_found);
  server.Delete(".*", not_found);

  if (options.port == 0) {
    port = server.bind_to_any_port("127.0.0.1");
  } else if (server.bind_to_port("127.0.0.1", options.port)) {
    port = options.port;
  } else {
    port = -1;
  }
  if (port <= 0) {
    throw std::runtime_error("fake ollama: cannot bind 127.0.0.1:" + std::to_string(options.port));
  }
  // httplib listens with a backlog of 5: a burst of concurrent connections would
  // overflow it and wait a second for the SYN to be sent again.
  if (const int listener = find_socket_fd(port, 0); listener >= 0) ::listen(listener, SOMAXCONN);
  thread = std::thread([this] { server.listen_after_bind(); });
  // Server::stop() only acts once the accept loop runs; the socket already accepts
  // connections, so this wait only guards the destructor.
  while (!server.is_running()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void FakeOllama::Impl::stop() {
  {
    std::lock_guard lock(mutex);
    stopping = true;
  }
  if (stop_event >= 0) {
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t written = ::write(stop_event, &one, sizeof(one));
  }
  cv.notify_all();
  server.stop();
  if (thread.joinable()) thread.join();
}

FakeOllama::FakeOllama() : FakeOllama(FakeOllamaOptions{}) {}

FakeOllama::FakeOllama(FakeOllamaOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->start(options);
}

FakeOllama::~FakeOllama() {
  impl_->stop();
}

int FakeOllama::port() const {
  return impl_->port;
}

std::string FakeOllama::url() const {
  return "http://127.0.0.1:" + std::to_string(impl_->port);
}

void FakeOllama::set_models(std::vector<std::string> models) {
  std::lock_guard lock(impl_->mutex);
  impl_->models = std::move(models);
}

void FakeOllama::set_version(std::string version) {
  std::lock_guard lock(impl_->mutex);
  impl_->version = std::move(version);
}

void FakeOllama::set_script(FakeScript script) {
  std::lock_guard lock(impl_->mutex);
  impl_->script = std::move(script);
}

void FakeOllama::release() {
  {
    std::lock_guard lock(impl_->mutex);
    ++impl_->release_epoch;
  }
  impl_->cv.notify_all();
}

int FakeOllama::chat_requests() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->chat_requests;
}

int FakeOllama::active_chats() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->active_chats;
}

std::vector<ReceivedRequest> FakeOllama::requests() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->requests;
}

nlohmann::json FakeOllama::last_chat_body() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->last_chat_body;
}

bool FakeOllama::wait_for_chat_requests(int n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->mutex);
  return impl_->cv.wait_for(lock, timeout, [&] { return impl_->chat_requests >= n; });
}

bool FakeOllama::wait_for_client_abort(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->mutex);
  return impl_->cv.wait_for(lock, timeout, [&] { return impl_->client_aborts > 0; });
}

int FakeOllama::client_aborts() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->client_aborts;
}

}  // namespace ticketaid::testing
