#include "app/app.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>

#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "app/mirror_setup.h"
#include "app/service_manager.h"
#include "core/chat_service.h"
#include "core/generation_queue.h"
#include "core/health_monitor.h"
#include "core/ticket_service.h"
#include "limits/redis_rate_limiter.h"
#include "llm/llm_client.h"
#include "net/server.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/periodic_task.h"

namespace ticketaid {
namespace {

namespace asio = boost::asio;
using std::chrono::milliseconds;

constexpr milliseconds kStatusInterval{5000};
// After the drain, the last frames (done, or the busy errors of stopped
// generations) were posted to their connections: a moment to write them.
constexpr milliseconds kFlushWindow{200};

// The current settings; reloading swaps the pointer.
class SettingsHolder {
 public:
  explicit SettingsHolder(std::shared_ptr<const Settings> settings)
      : settings_(std::move(settings)) {}
  std::shared_ptr<const Settings> get() const {
    std::lock_guard lock(mutex_);
    return settings_;
  }
  void set(std::shared_ptr<const Settings> settings) {
    std::lock_guard lock(mutex_);
    settings_ = std::move(settings);
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const Settings> settings_;
};

// Set by the stop signals' handler, awaited by the control thread.
class StopRequest {
 public:
  void request(int signal) {
    {
      std::lock_guard lock(mutex_);
      if (signal_ == 0) signal_ = signal;
    }
    wake_.notify_all();
  }
  bool requested() {
    std::lock_guard lock(mutex_);
    return signal_ != 0;
  }
  int wait() {
    std::unique_lock lock(mutex_);
    wake_.wait(lock, [this] { return signal_ != 0; });
    return signal_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  int signal_ = 0;
};

bool write_port_file(const std::string& path, const std::string& address) {
  std::ofstream out(path, std::ios::trunc);
  out << address << "\n";
  return static_cast<bool>(out.flush());
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    out += (out.empty() ? "" : ", ") + item;
  }
  return out;
}

// Loads the settings again and applies them if every changed key is reloadable;
// otherwise logs one line saying why and keeps the running settings.
void reload_settings(SettingsHolder& holder, const RunOptions& options) {
  if (!options.reload) {
    spdlog::warn("SIGHUP: this daemon cannot reload its settings; ignored");
    return;
  }
  auto loaded = options.reload();
  if (!loaded) {
    spdlog::error("reload refused, keeping the running settings: {}", loaded.status().message());
    return;
  }
  const auto current = holder.get();
  const auto changed = changed_keys(*current, *loaded->settings);
  std::vector<std::string> need_restart;
  for (const auto& key : changed) {
    if (!is_reloadable(key)) need_restart.push_back(key);
  }
  if (!need_restart.empty()) {
    spdlog::error(
        "reload refused, keeping the running settings: {} cannot change without a restart",
        join(need_restart));
    return;
  }
  for (const auto& warning : loaded->warnings) {
    spdlog::warn("{}", warning);
  }
  spdlog::info("reloaded the configuration{}: {}",
               loaded->file_used.empty() ? "" : " from " + loaded->file_used,
               changed.empty() ? "nothing changed" : "changed " + join(changed));
  holder.set(loaded->settings);
  set_log_level(loaded->settings->log_level);
}

// Pets systemd's watchdog only while the I/O loop runs handlers: each tick posts a
// probe and pets only when the previous probe has run, so a hung loop stops the
// pings and systemd restarts the daemon.
class LoopWatchdog {
 public:
  LoopWatchdog(asio::io_context& ioc, Store& store, BlockingExecutor blocking,
               std::chrono::microseconds interval)
      : ioc_(ioc),
        store_(store),
        blocking_(std::move(blocking)),
        task_(std::chrono::duration_cast<milliseconds>(interval) / 2, [this] { tick(); }) {}
  void start() { task_.start(); }
  void stop() { task_.stop(); }

 private:
  // Pets only when both probes sent at the last tick came back: the I/O loop ran a
  // posted handler, and the store's writer thread ran an empty job.
  void tick() {
    const bool loop_alive = loop_probe_->exchange(false);
    const bool writer_alive = writer_probe_->exchange(false);
    if (!loop_alive || !writer_alive) {
      // Probes still out are not sent again; a hung part stops the petting.
      if (loop_alive) loop_probe_->store(true);
      if (writer_alive) writer_probe_->store(true);
      return;
    }
    service_manager::notify_watchdog();
    asio::post(ioc_, [ran = loop_probe_] { ran->store(true); });
    blocking_([ran = writer_probe_, &store = store_] {
      if (store.ping().is_ok()) ran->store(true);
    });
  }

  asio::io_context& ioc_;
  Store& store_;
  BlockingExecutor blocking_;
  // Shared with the posted probes, which may outlive this object in their queues.
  std::shared_ptr<std::atomic<bool>> loop_probe_ = std::make_shared<std::atomic<bool>>(true);
  std::shared_ptr<std::atomic<bool>> writer_probe_ = std::make_shared<std::atomic<bool>>(true);
  PeriodicTask task_;
};

std::string status_text(const TicketService& tickets, const ChatService& chats) {
  return fmt::format("serving: {} connection(s), {} generation(s) running, {} queued",
                     metrics().connections_current.value(),
                     tickets.active_generations() + chats.active_generations(),
                     tickets.queue_depth());
}

// SIGTERM: no new connections, no new work; the running generations get up to
// drain_timeout to finish; then whatever still runs is stopped (its sessions are
// left interrupted) and the last frames get a moment to reach their sockets.
void drain(Server& server, TicketService& tickets, ChatService& chats,
           std::chrono::seconds drain_timeout) {
  server.stop_accepting();
  tickets.refuse_new_requests();
  chats.refuse_new_requests();
  const auto active = [&] { return tickets.active_generations() + chats.active_generations(); };
  const bool had_work = active() > 0;
  if (had_work && drain_timeout.count() > 0) {
    spdlog::info("draining: waiting up to {} s for {} generation(s) to finish",
                 drain_timeout.count(), active());
    service_manager::notify_status(fmt::format("draining: {} generation(s) running", active()));
    const auto deadline = std::chrono::steady_clock::now() + drain_timeout;
    // Generations announce their end to their listeners, not to the app: poll.
    while (active() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(20));
    }
  }
  if (const auto left = active(); left > 0) {
    spdlog::warn("drain: stopping {} unfinished generation(s); they regenerate on request", left);
  }
  tickets.shutdown();
  chats.shutdown();
  // A stopped generation ends once its model request returns, which closing the
  // connection makes quick; wait for that (bounded) so its error frame goes out.
  const auto stopped_by = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (active() > 0 && std::chrono::steady_clock::now() < stopped_by) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  if (had_work && metrics().connections_current.value() > 0) {
    std::this_thread::sleep_for(kFlushWindow);
  }
}

// After the drain: every WebSocket still open is closed with 1001 (going away), and
// gets a moment (bounded) to finish its close handshake.
void close_websockets(SocketHub& sockets) {
  const std::size_t asked = sockets.close_all();
  if (asked == 0) return;
  spdlog::info("closing {} WebSocket(s) with 1001", asked);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (sockets.size() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
  }
}

// Rate limits in Redis when redis.url is set (shared by every node using it), else
// in this process; the local limiter is also Redis' fallback.
std::unique_ptr<RateLimiter> make_rate_limiter(const Settings& settings) {
  auto local = make_local_rate_limiter(system_clock(),
                                       static_cast<std::size_t>(settings.rate_limit_max_keys));
  if (settings.redis_url.empty()) return local;
  auto url = parse_redis_url(settings.redis_url);  // checked when the settings loaded
  spdlog::info("rate limits are kept in Redis at {}", url.value().display());
  RedisLimiterOptions options;
  options.url = url.value();
  options.deny_on_failure = settings.redis_on_failure == "deny";
  return make_redis_rate_limiter(std::move(options), std::move(local));
}

}  // namespace

int run_daemon(std::shared_ptr<const Settings> initial, const RunOptions& options) {
  std::signal(SIGPIPE, SIG_IGN);
  // SIGTERM, SIGINT and SIGHUP are taken only by the I/O threads (asio's signal_set
  // notes them there). Every other thread starts with them blocked, so the kernel
  // never hands one to a thread that may sleep without end, such as the store's
  // writer; a sanitizer, which runs handlers only when the thread wakes, would
  // otherwise sit on a stop request.
  const sigset_t control_signals = [] {
    sigset_t set;
    sigemptyset(&set);
    for (int signal : {SIGTERM, SIGINT, SIGHUP}) {
      sigaddset(&set, signal);
    }
    return set;
  }();
  pthread_sigmask(SIG_BLOCK, &control_signals, nullptr);
  spdlog::info("{}", service_manager::raise_open_files_limit());
  SettingsHolder holder(initial);
  const Settings& settings = *initial;

  auto target = mirror_target(settings);
  if (!target) {
    spdlog::critical("{}", target.status().message());
    return 1;
  }
  auto store = open_sqlite_store({settings.storage_path, settings.storage_synchronous,
                                  settings.storage_busy_timeout_ms, 4, target.value()});
  if (!store) {
    spdlog::critical("cannot open the database {}: {}", settings.storage_path,
                     store.status().message());
    return 1;
  }
  if (auto interrupted = store.value()->mark_interrupted(); !interrupted) {
    spdlog::critical("cannot recover the database: {}", interrupted.status().message());
    return 1;
  } else if (interrupted.value() > 0) {
    spdlog::warn("{} generation(s) were interrupted by the last stop; they regenerate on request",
                 interrupted.value());
  }

  auto mirror = make_mirror(settings, *store.value()->outbox(), target.value());
  if (!mirror) {
    spdlog::critical("{}", mirror.status().message());
    return 1;
  }
  if (mirror.value()) {
    spdlog::info("mirroring to MongoDB at {}{}", target.value(),
                 settings.mongo_read_through ? " (read-through on)" : "");
    mirror.value()->start();
  }
  SharedAnswers* shared_answers = mirror.value() ? mirror.value()->shared_answers() : nullptr;

  auto llm = make_ollama_client(
      {settings.ollama_url, std::chrono::seconds(settings.ollama_connect_timeout_s)});
  GenerationQueue queue(settings.generation_max_parallel, settings.generation_max_queue);
  asio::thread_pool blocking(4);
  const BlockingExecutor run_blocking = [&blocking](std::function<void()> task) {
    asio::post(blocking, std::move(task));
  };
  const SettingsSource current_settings = [&holder] { return holder.get(); };
  TicketService tickets(*store.value(), *llm, queue, system_clock(), current_settings, run_blocking,
                        shared_answers);
  ChatService chats(*store.value(), *llm, queue, system_clock(), current_settings, run_blocking);
  PeriodicTask janitor(std::chrono::seconds(settings.sessions_purge_interval_s),
                       [&chats] { chats.purge_expired(); });
  janitor.start();
  HealthMonitor health(*llm, *store.value(),
                       std::chrono::seconds(settings.ollama_probe_interval_s));
  health.start();
  auto authenticator = make_authenticator(settings, system_clock());
  if (!authenticator) {
    spdlog::critical("{}", authenticator.status().message());
    return 1;
  }
  std::unique_ptr<RateLimiter> rate_limiter = make_rate_limiter(settings);
  ConnectionRegistry connections;
  SocketHub sockets;
  auto context = std::make_shared<const ServerContext>(ServerContext{
      tickets, chats, *store.value(), *llm, run_blocking, current_settings, health,
      *authenticator.value(), *rate_limiter, connections, sockets, mirror.value().get()});
  PeriodicTask checkpoints(std::chrono::seconds(settings.storage_checkpoint_interval_s), [&] {
    if (Status folded = store.value()->checkpoint(/*truncate=*/false); !folded) {
      spdlog::warn("checkpoint: {}", folded.message());
    }
  });
  checkpoints.start();

  std::string activation_error;
  const auto activated = service_manager::activated_socket(&activation_error);
  if (!activation_error.empty()) {
    spdlog::critical("{}", activation_error);
    return 1;
  }
  const int io_threads = std::max(1, settings.server_io_threads);
  asio::io_context ioc(io_threads);
  auto server = start_server(ioc, context, activated.value_or(-1));
  if (!server) {
    spdlog::critical("{}", server.status().message());
    return 1;
  }
  const std::string address = server.value()->local_address();
  std::printf("ticketaid listening on http://%s\n", address.c_str());
  std::fflush(stdout);
  if (!options.port_file.empty() && !write_port_file(options.port_file, address)) {
    spdlog::critical("cannot write the port file {}", options.port_file);
    return 1;
  }
  spdlog::info("serving on {}{} with Ollama at {} (model {}), database {}", address,
               activated ? " (socket from systemd; server.listen is not used)" : "",
               settings.ollama_url, settings.ollama_model, settings.storage_path);

  // Signals are only noted here; the work they ask for runs elsewhere.
  StopRequest stop;
  asio::signal_set stop_signals(ioc, SIGINT, SIGTERM);
  stop_signals.async_wait([&stop](const boost::system::error_code& ec, int signal) {
    if (!ec) stop.request(signal);
  });
  asio::signal_set reload_signals(ioc, SIGHUP);
  std::function<void()> await_reload = [&] {
    reload_signals.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      // Reading the file is blocking work: off the I/O threads, one reload at a time.
      asio::post(blocking, [&] {
        if (stop.requested()) return;  // stopping: no READY=1 any more
        service_manager::notify_reloading();
        reload_settings(holder, options);
        service_manager::notify_ready();
        asio::post(ioc, await_reload);
      });
    });
  };
  await_reload();

  auto work = asio::make_work_guard(ioc);
  std::vector<std::thread> threads;
  for (int i = 0; i < io_threads; ++i)
    threads.emplace_back([&ioc, &control_signals] {
      pthread_sigmask(SIG_UNBLOCK, &control_signals, nullptr);
      ioc.run();
    });

  // The database is open and the listener bound: ready.
  service_manager::notify("READY=1\nSTATUS=serving on " + address);
  PeriodicTask status_updates(kStatusInterval,
                              [&] { service_manager::notify_status(status_text(tickets, chats)); });
  status_updates.start();
  std::optional<LoopWatchdog> watchdog;
  if (const auto interval = service_manager::watchdog_interval()) {
    watchdog.emplace(ioc, *store.value(), run_blocking, *interval);
    watchdog->start();
    spdlog::info("systemd watchdog: pinging every {} ms while the I/O loop and the writer answer",
                 std::chrono::duration_cast<milliseconds>(*interval).count() / 2);
  }

  const int signal = stop.wait();
  service_manager::notify_stopping();
  status_updates.stop();
  spdlog::info("signal {} received: stopping", signal);
  drain(*server.value(), tickets, chats,
        std::chrono::seconds(holder.get()->server_drain_timeout_s));
  close_websockets(sockets);

  // The watchdog keeps petting through the drain; the I/O threads stop last.
  if (watchdog) watchdog->stop();
  work.reset();
  ioc.stop();
  for (auto& t : threads)
    t.join();

  // The I/O threads are gone; stop the pools that feed the engine.
  queue.stop();
  health.stop();
  janitor.stop();
  blocking.join();
  checkpoints.stop();
  // What the mirror has not sent stays in the outbox for the next start.
  if (mirror.value()) mirror.value()->stop();
  // The rate limiter's thread may still settle decisions: it posts to the stopped
  // io_context, which must outlive it.
  rate_limiter.reset();
  server.value().reset();
  // Everything is written: fold the write-ahead log into the database file, so that
  // the file alone is a complete copy (for a backup taken while stopped).
  if (Status folded = store.value()->checkpoint(/*truncate=*/true); !folded) {
    spdlog::warn("final checkpoint: {}", folded.message());
  }
  spdlog::info("stopped");
  return 0;
}

}  // namespace ticketaid
