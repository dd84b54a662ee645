// Asio and Beast pieces shared by the modes that open sockets: a pool of
// single-threaded io_contexts, the closed-loop bookkeeping, and cheap scans of the
// server's JSON frames (parsing every frame with a JSON library would make the
// client, not the server, the bottleneck). Include only from the modes' .cpp files:
// Beast is slow to compile.
//
// Thread-safety: an IoPool is driven by the main thread; each io_context runs on one
// thread of its own, so the objects bound to it need no locks.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/bench_support.h"

namespace ticketaid::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using error_code = beast::error_code;

// N io_contexts, each run by its own thread (concurrency hint 1: no locking inside).
class IoPool {
 public:
  explicit IoPool(int threads) {
    for (int i = 0; i < std::max(1, threads); ++i) {
      ios_.push_back(std::make_unique<asio::io_context>(1));
    }
  }
  ~IoPool() {
    stop();
    join();
  }
  IoPool(const IoPool&) = delete;
  IoPool& operator=(const IoPool&) = delete;

  int size() const { return static_cast<int>(ios_.size()); }
  asio::io_context& at(int i) { return *ios_[static_cast<std::size_t>(i) % ios_.size()]; }

  // Runs every io_context on its thread until it runs out of work.
  void start() {
    for (auto& io : ios_) {
      io->restart();
      threads_.emplace_back([&ctx = *io] { ctx.run(); });
    }
  }
  void join() {
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
    threads_.clear();
  }
  void stop() {
    for (auto& io : ios_) {
      io->stop();
    }
  }

 private:
  std::vector<std::unique_ptr<asio::io_context>> ios_;
  std::vector<std::thread> threads_;
};

// The address to connect to, resolved once.
inline tcp::endpoint resolve(const Address& address) {
  asio::io_context io;
  tcp::resolver resolver(io);
  auto results = resolver.resolve(address.host, std::to_string(address.port));
  if (results.empty()) throw std::runtime_error("cannot resolve " + address.host);
  return *results.begin();
}

// The string value of "key":"..." in a compact JSON object, or "" when absent. The
// last occurrence is taken: ticketaid sorts keys, so "type" comes last and content
// cannot hide an unescaped copy of the pattern.
inline std::string_view json_string_field(std::string_view text, std::string_view quoted_key) {
  const auto at = text.rfind(quoted_key);
  if (at == std::string_view::npos) return {};
  auto start = at + quoted_key.size();
  while (start < text.size() && (text[start] == ':' || text[start] == ' ')) {
    ++start;
  }
  if (start >= text.size() || text[start] != '"') return {};
  ++start;
  const auto end = text.find('"', start);
  if (end == std::string_view::npos) return {};
  return text.substr(start, end - start);
}

inline std::string_view frame_type(std::string_view frame) {
  return json_string_field(frame, "\"type\"");
}

inline std::string_view buffer_view(const beast::flat_buffer& buffer) {
  return {static_cast<const char*>(buffer.data().data()), buffer.size()};
}

// A short name for a transport error, for the error counts.
inline std::string error_name(const char* step, const error_code& ec) {
  return std::string(step) + ": " + ec.message();
}

}  // namespace ticketaid::bench
