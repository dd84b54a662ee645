#include "app/app.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/thread_pool.hpp>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "core/chat_service.h"
#include "core/generation_queue.h"
#include "core/health_monitor.h"
#include "core/ticket_service.h"
#include "llm/llm_client.h"
#include "net/server.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/periodic_task.h"

namespace ticketaid {
namespace {

namespace asio = boost::asio;

// The current settings; reloading swaps the pointer.
class SettingsHolder {
 public:
  explicit SettingsHolder(std::shared_ptr<const Settings> settings)
      : settings_(std::move(settings)) {}
  std::shared_ptr<const Settings> get() const {
    std::lock_guard lock(mutex_);
    return settings_;
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const Settings> settings_;
};

bool write_port_file(const std::string& path, const std::string& address) {
  std::ofstream out(path, std::ios::trunc);
  out << address << "\n";
  return static_cast<bool>(out.flush());
}

}  // namespace

int run_daemon(std::shared_ptr<const Settings> initial, const RunOptions& options) {
  std::signal(SIGPIPE, SIG_IGN);
  SettingsHolder holder(initial);
  const Settings& settings = *initial;

  auto store = open_sqlite_store(
      {settings.storage_path, settings.storage_synchronous, settings.storage_busy_timeout_ms, 4});
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

  auto llm = make_ollama_client(
      {settings.ollama_url, std::chrono::seconds(settings.ollama_connect_timeout_s)});
  GenerationQueue queue(settings.generation_max_parallel, settings.generation_max_queue);
  asio::thread_pool blocking(4);
  const BlockingExecutor run_blocking = [&blocking](std::function<void()> task) {
    asio::post(blocking, std::move(task));
  };
  const SettingsSource current_settings = [&holder] { return holder.get(); };
  TicketService tickets(*store.value(), *llm, queue, system_clock(), current_settings,
                        run_blocking);
  ChatService chats(*store.value(), *llm, queue, system_clock(), current_settings, run_blocking);
  PeriodicTask janitor(std::chrono::seconds(settings.sessions_purge_interval_s),
                       [&chats] { chats.purge_expired(); });
  janitor.start();
  HealthMonitor health(*llm, *store.value(),
                       std::chrono::seconds(settings.ollama_probe_interval_s));
  health.start();
  auto context = std::make_shared<const ServerContext>(
      ServerContext{tickets, chats, *store.value(), *llm, run_blocking, current_settings, health});

  const int io_threads = std::max(1, settings.server_io_threads);
  asio::io_context ioc(io_threads);
  auto server = start_server(ioc, context);
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
  spdlog::info("serving on {} with Ollama at {} (model {}), database {}", address,
               settings.ollama_url, settings.ollama_model, settings.storage_path);

  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    spdlog::info("signal {} received: stopping", signal);
    server.value()->stop_accepting();
    ioc.stop();
  });

  std::vector<std::thread> threads;
  for (int i = 1; i < io_threads; ++i)
    threads.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : threads)
    t.join();

  // The I/O threads are gone; stop the engine, then the pools that feed it.
  tickets.shutdown();
  chats.shutdown();
  queue.stop();
  health.stop();
  janitor.stop();
  blocking.join();
  server.value().reset();
  spdlog::info("stopped");
  return 0;
}

}  // namespace ticketaid
