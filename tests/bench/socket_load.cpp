// WebSockets that stay open: cached round trips and idle sockets (see run_cached and
// run_idle in load_modes.h).
//
// Thread-safety: every connection lives on one io_context, run by one thread. The
// main thread only reads atomics while the threads run, and the per-thread counters
// after they end.
#include <map>

#include "bench/bench_net.h"
#include "bench/load_modes.h"

namespace ticketaid::bench {
namespace {

constexpr std::chrono::seconds kConnectTimeout{30};

// Waits until done() or the deadline; returns done().
template <class Done>
bool wait_until(Done done, Clock::time_point deadline) {
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// ---------------------------------------------------------------- cached answers

struct CachedCounts {
  Latencies rtt;
  int64_t round_trips = 0;  // that ended inside the window
  int64_t not_cached = 0;   // replies that were generated instead of served from the cache
  int64_t warm_tokens = 0;
  std::map<std::string, int64_t> errors;
};

struct CachedPlan {
  tcp::endpoint endpoint;
  std::string host_header;
  std::string run_id;
  Window window;
  std::atomic<int> live{0};  // connections still in the timed loop
};

// One connection to one ticket: a first request fills the cache (warm), then the
// same body is sent again and again (loop).
class CachedConn : public std::enable_shared_from_this<CachedConn> {
 public:
  CachedConn(asio::io_context& io, CachedPlan& plan, CachedCounts& counts, int index)
      : ws_(io), plan_(plan), counts_(counts) {
    ticket_ = "c" + plan.run_id + "-" + std::to_string(index);
    message_ = json{{"ticketBody", "Ticket " + ticket_ +
                                       ": the VPN client disconnects every ten minutes on the "
                                       "hotel wifi. What should the technician try?"}}
                   .dump();
  }

  bool warm() const { return warm_; }

  void start_warming() {
    auto& tcp = beast::get_lowest_layer(ws_);
    tcp.expires_after(kConnectTimeout);
    tcp.async_connect(plan_.endpoint, [self = shared_from_this()](error_code ec) {
      if (ec) return self->fail_warming(error_name("connect", ec));
      beast::get_lowest_layer(self->ws_).expires_never();
      self->ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
      self->ws_.async_handshake(self->plan_.host_header, "/api/websocket/chat/" + self->ticket_,
                                [self](error_code ec) {
                                  if (ec) return self->fail_warming(error_name("handshake", ec));
                                  self->ask(false);
                                });
    });
  }

  void start_loop() {
    if (Clock::now() >= plan_.window.end) {
      error_code ignored;
      beast::get_lowest_layer(ws_).socket().close(ignored);
      plan_.live.fetch_sub(1);
      return;
    }
    ask(true);
  }

 private:
  void ask(bool timed) {
    ws_.text(true);
    saw_cached_ = false;
    sent_ = Clock::now();
    ws_.async_write(asio::buffer(message_),
                    [self = shared_from_this(), timed](error_code ec, std::size_t) {
                      if (ec) return self->fail(timed, error_name("write", ec));
                      self->read(timed);
                    });
  }

  void read(bool timed) {
    buffer_.clear();
    ws_.async_read(buffer_, [self = shared_from_this(), timed](error_code ec, std::size_t) {
      if (ec) return self->fail(timed, error_name("read", ec));
      self->on_frame(timed);
    });
  }

  void on_frame(bool timed) {
    const std::string_view frame = buffer_view(buffer_);
    const std::string_view type = frame_type(frame);
    if (type == "cached") {
      saw_cached_ = true;
    } else if (type == "stream") {
      ++counts_.warm_tokens;
    } else if (type == "error") {
      return fail(timed, "error frame: " + std::string(json_string_field(frame, "\"code\"")));
    } else if (type == "done") {
      if (!timed) {
        warm_ = true;
        return;  // nothing pending: the connection waits for the timed phase
      }
      const auto now = Clock::now();
      if (!saw_cached_) ++counts_.not_cached;
      if (plan_.window.contains(sent_)) counts_.rtt.add(micros(sent_, now));
      if (plan_.window.contains(now)) ++counts_.round_trips;
      return start_loop();
    }
    read(timed);
  }

  void fail(bool timed, const std::string& what) {
    ++counts_.errors[what];
    error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
    if (timed) plan_.live.fetch_sub(1);  // a connection that fails warming is left out
  }
  void fail_warming(const std::string& what) { fail(false, what); }

  websocket::stream<beast::tcp_stream> ws_;
  CachedPlan& plan_;
  CachedCounts& counts_;
  std::string ticket_;
  std::string message_;
  beast::flat_buffer buffer_;
  Clock::time_point sent_;
  bool saw_cached_ = false;
  bool warm_ = false;
};

// ---------------------------------------------------------------- idle sockets

struct IdlePlan {
  tcp::endpoint endpoint;
  std::string host_header;
  std::string run_id;
  std::atomic<int> opened{0};
  std::atomic<int> failed{0};
  std::atomic<int> open_now{0};           // opened and not closed since
  bool closing = false;                   // on the io thread only
  std::map<std::string, int64_t> errors;  // on the io thread only
};

// A WebSocket that sends nothing and keeps a read pending (so that server pings
// would be answered).
class IdleConn : public std::enable_shared_from_this<IdleConn> {
 public:
  IdleConn(asio::io_context& io, IdlePlan& plan, int index, std::function<void()> on_settled)
      : ws_(io), plan_(plan), index_(index), on_settled_(std::move(on_settled)) {}

  void open() {
    auto& tcp = beast::get_lowest_layer(ws_);
    tcp.expires_after(kConnectTimeout);
    tcp.async_connect(plan_.endpoint, [self = shared_from_this()](error_code ec) {
      if (ec) return self->fail(error_name("connect", ec));
      beast::get_lowest_layer(self->ws_).expires_never();
      self->ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
      const std::string target =
          "/api/websocket/chat/i" + self->plan_.run_id + "-" + std::to_string(self->index_);
      self->ws_.async_handshake(self->plan_.host_header, target, [self](error_code ec) {
        if (ec) return self->fail(error_name("handshake", ec));
        self->plan_.opened.fetch_add(1);
        self->plan_.open_now.fetch_add(1);
        self->read();
        self->settled();
      });
    });
  }

  void close() {
    error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }

 private:
  void read() {
    ws_.async_read(buffer_, [self = shared_from_this()](error_code ec, std::size_t) {
      if (!ec) {
        self->buffer_.clear();  // the server sent something unasked; keep listening
        return self->read();
      }
      self->plan_.open_now.fetch_sub(1);
      if (!self->plan_.closing) ++self->plan_.errors[error_name("closed early", ec)];
    });
  }

  void fail(const std::string& what) {
    ++plan_.errors[what];
    plan_.failed.fetch_add(1);
    settled();
  }

  void settled() {
    if (on_settled_) std::exchange(on_settled_, nullptr)();
  }

  websocket::stream<beast::tcp_stream> ws_;
  IdlePlan& plan_;
  const int index_;
  beast::flat_buffer buffer_;
  std::function<void()> on_settled_;
};

// Opens connections one after another, with at most `concurrency` in progress.
class IdleLauncher {
 public:
  IdleLauncher(asio::io_context& io, IdlePlan& plan, int total)
      : io_(io), plan_(plan), total_(total) {}

  void launch() {
    if (next_ >= total_) return;
    const int index = next_++;
    auto conn = std::make_shared<IdleConn>(io_, plan_, index, [this] { launch(); });
    conns_.push_back(conn);
    conn->open();
  }

  void close_all() {
    plan_.closing = true;
    for (auto& conn : conns_) {
      conn->close();
    }
    conns_.clear();
  }

 private:
  asio::io_context& io_;
  IdlePlan& plan_;
  const int total_;
  int next_ = 0;
  std::vector<std::shared_ptr<IdleConn>> conns_;
};

}  // namespace

json run_cached(const CachedOptions& options) {
  const Timing& timing = options.timing;
  IoPool pool(timing.threads);
  CachedPlan plan;
  plan.endpoint = resolve(options.target);
  plan.host_header = options.target.host_header();
  plan.run_id = timing.run_id;
  std::vector<CachedCounts> counts(static_cast<std::size_t>(pool.size()));
  std::vector<std::shared_ptr<CachedConn>> conns;
  for (int i = 0; i < options.connections; ++i) {
    auto conn = std::make_shared<CachedConn>(pool.at(i), plan,
                                             counts[static_cast<std::size_t>(i % pool.size())], i);
    conns.push_back(conn);
    asio::post(pool.at(i), [conn] { conn->start_warming(); });
  }

  // Warm: every connection's ticket is generated once; the threads end when done.
  const auto warm_start = Clock::now();
  pool.start();
  pool.join();
  const double warm_s = std::chrono::duration<double>(Clock::now() - warm_start).count();

  // Timed: the warm connections send their cached body again and again.
  int looping = 0;
  const auto start = Clock::now();
  plan.window = {start + seconds_of(timing.warmup_s),
                 start + seconds_of(timing.warmup_s + timing.duration_s)};
  for (std::size_t i = 0; i < conns.size(); ++i) {
    if (!conns[i]->warm()) continue;
    ++looping;
    asio::post(pool.at(static_cast<int>(i)), [conn = conns[i]] { conn->start_loop(); });
  }
  plan.live = looping;
  CpuMeter cpu(timing.pids);
  pool.start();
  std::this_thread::sleep_until(plan.window.start);
  cpu.start();
  std::this_thread::sleep_until(plan.window.end);
  json cpu_json = cpu.stop();
  const bool drained = wait_until([&] { return plan.live.load() == 0; },
                                  plan.window.end + seconds_of(timing.drain_s));
  if (!drained) pool.stop();
  pool.join();

  CachedCounts total;
  for (const auto& c : counts) {
    total.rtt.merge(c.rtt);
    total.round_trips += c.round_trips;
    total.not_cached += c.not_cached;
    total.warm_tokens += c.warm_tokens;
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
  out["target"] = "ticketaid";
  out["connections"] = options.connections;
  out["warm_connections"] = looping;
  out["warm_s"] = warm_s;
  out["warm_tokens"] = total.warm_tokens;
  out["threads"] = pool.size();
  out["warmup_s"] = timing.warmup_s;
  out["duration_s"] = window_s;
  out["rtt"] = total.rtt.summary();
  out["round_trips"] = total.round_trips;
  out["round_trips_per_s"] = static_cast<double>(total.round_trips) / window_s;
  out["not_cached"] = total.not_cached;
  out["errors"] = total.errors;
  out["error_count"] = error_count;
  out["unfinished"] = plan.live.load();
  out["cpu"] = cpu_json;
  return out;
}

json run_idle(const IdleOptions& options) {
  IoPool pool(1);
  IdlePlan plan;
  plan.endpoint = resolve(options.target);
  plan.host_header = options.target.host_header();
  plan.run_id = options.run_id;
  IdleLauncher launcher(pool.at(0), plan, options.sockets);

  auto pids = options.pids;
  pids.push_back(options.daemon);
  CpuMeter cpu(pids);
  const ProcessSample before = read_process(options.daemon.pid);
  cpu.start();
  const auto start = Clock::now();
  asio::post(pool.at(0), [&launcher, n = options.concurrency] {
    for (int i = 0; i < n; ++i) {
      launcher.launch();
    }
  });
  // The io thread never runs out of work while sockets are open: run it until the end.
  auto guard = asio::make_work_guard(pool.at(0));
  pool.start();
  wait_until([&] { return plan.opened.load() + plan.failed.load() >= options.sockets; },
             start + std::chrono::seconds(300));
  const double connect_s = std::chrono::duration<double>(Clock::now() - start).count();
  std::this_thread::sleep_for(seconds_of(options.settle_s));
  const ProcessSample open = read_process(options.daemon.pid);
  std::this_thread::sleep_for(seconds_of(options.hold_s));
  const int still_open = plan.open_now.load();
  const ProcessSample held = read_process(options.daemon.pid);
  json cpu_json = cpu.stop();

  asio::post(pool.at(0), [&launcher] { launcher.close_all(); });
  wait_until([&] { return plan.open_now.load() == 0; }, Clock::now() + std::chrono::seconds(30));
  guard.reset();
  pool.stop();
  pool.join();
  std::this_thread::sleep_for(seconds_of(options.settle_s));
  const ProcessSample after = read_process(options.daemon.pid);

  const int opened = plan.opened.load();
  json out;
  out["target"] = "ticketaid";
  out["sockets"] = options.sockets;
  out["sockets_open"] = opened;
  out["failed"] = plan.failed.load();
  out["connect_s"] = connect_s;
  out["still_open"] = still_open;
  out["rss_before_kb"] = before.rss_kb;
  out["rss_open_kb"] = open.rss_kb;
  out["rss_held_kb"] = held.rss_kb;
  out["rss_after_close_kb"] = after.rss_kb;
  out["hwm_kb"] = held.hwm_kb;
  out["threads"] = held.threads;
  out["per_socket_bytes"] =
      opened > 0 ? static_cast<double>(open.rss_kb - before.rss_kb) * 1024.0 / opened : 0.0;
  out["errors"] = plan.errors;
  int64_t error_count = 0;
  for (const auto& [what, n] : plan.errors) {
    error_count += n;
  }
  out["error_count"] = error_count;
  out["cpu"] = cpu_json;
  return out;
}

}  // namespace ticketaid::bench
