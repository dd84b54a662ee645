// The test WebSocket client over Boost.Beast (see ws_client.h).
//
// Every operation is asynchronous on a private io_context that the calling thread
// runs until the operation completes or its time is up. A read that times out is
// left pending rather than cancelled (cancelling a Beast WebSocket read fails the
// stream), and the next read_json() picks it up, so a test can wait for "nothing
// arrives" and then go on reading. This is the only file of tests/support that
// includes Beast, which is slow to compile.
//
// Thread-safety: one thread uses a WsClient; completion handlers run on that thread
// inside the run loops.
#include "support/ws_client.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

namespace ticketaid::testing {
namespace {

namespace beast = boost::beast;
namespace net = boost::asio;
namespace websocket = beast::websocket;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::seconds kConnectTimeout{10};
constexpr std::chrono::seconds kWriteTimeout{10};
constexpr std::chrono::seconds kCloseTimeout{5};

// The outcome of one asynchronous operation, shared with its handler so that a
// handler that runs late never writes into a finished stack frame.
struct Op {
  bool done = false;
  beast::error_code ec;
};

}  // namespace

struct WsClient::Impl {
  net::io_context ioc;
  std::unique_ptr<websocket::stream<beast::tcp_stream>> ws;
  beast::flat_buffer buffer;
  bool open = false;
  bool closing = false;      // close() sent our close frame
  std::shared_ptr<Op> read;  // the pending or completed, unconsumed read
  std::optional<int> close_code;
  std::string error;

  // Runs handlers until done() holds or the deadline passes; returns done().
  template <class Done>
  bool run_until(Done done, Clock::time_point deadline) {
    while (!done()) {
      if (ioc.stopped()) ioc.restart();
      const auto now = Clock::now();
      if (now >= deadline) return false;
      if (ioc.run_one_for(deadline - now) == 0 && ioc.stopped()) return done();  // no work
    }
    return true;
  }

  // Lets every outstanding handler finish after the socket was closed.
  void settle() {
    if (ioc.stopped()) ioc.restart();
    ioc.run_for(std::chrono::seconds(1));
    ioc.restart();
  }

  void drop_socket() {
    if (!ws) return;
    beast::error_code ignored;
    beast::get_lowest_layer(*ws).socket().close(ignored);
    open = false;
    settle();
  }

  void start_read() {
    read = std::make_shared<Op>();
    ws->async_read(buffer, [op = read](beast::error_code ec, std::size_t) {
      op->ec = ec;
      op->done = true;
    });
  }

  void on_read_error(const beast::error_code& ec) {
    open = false;
    if (ec == websocket::error::closed) {
      if (!closing) close_code = ws->reason().code;
      error = "closed with code " + std::to_string(ws->reason().code);
      if (!ws->reason().reason.empty())
        error += " (" + std::string(ws->reason().reason.data(), ws->reason().reason.size()) + ")";
      return;
    }
    error = "read: " + ec.message();
  }
};

WsClient::WsClient() : impl_(std::make_unique<Impl>()) {}

WsClient::~WsClient() {
  impl_->drop_socket();
}

WsHandshakeResult WsClient::connect(int port, const std::string& target,
                                    const std::map<std::string, std::string>& headers) {
  Impl& s = *impl_;
  s.drop_socket();
  s.ws = std::make_unique<websocket::stream<beast::tcp_stream>>(s.ioc);
  s.buffer.clear();
  s.read.reset();
  s.close_code.reset();
  s.error.clear();
  s.open = false;
  s.closing = false;

  WsHandshakeResult result;
  auto& tcp = beast::get_lowest_layer(*s.ws);
  // tcp_stream's timer bounds the connect and the handshake; it closes the socket
  // when it fires, so both operations always complete.
  tcp.expires_after(kConnectTimeout);
  const auto deadline = Clock::now() + kConnectTimeout + std::chrono::seconds(1);
  auto connect_op = std::make_shared<Op>();
  tcp.async_connect(
      net::ip::tcp::endpoint(net::ip::make_address_v4("127.0.0.1"), static_cast<uint16_t>(port)),
      [connect_op](beast::error_code ec) {
        connect_op->ec = ec;
        connect_op->done = true;
      });
  if (!s.run_until([&] { return connect_op->done; }, deadline) || connect_op->ec) {
    result.error = "connect: " + (connect_op->done ? connect_op->ec.message() : "timed out");
    s.error = result.error;
    s.drop_socket();
    return result;
  }

  s.ws->set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
    for (const auto& [name, value] : headers) {
      req.set(name, value);
    }
  }));
  auto response = std::make_shared<websocket::response_type>();
  auto handshake_op = std::make_shared<Op>();
  s.ws->async_handshake(*response, "127.0.0.1:" + std::to_string(port), target,
                        [handshake_op, response](beast::error_code ec) {
                          handshake_op->ec = ec;
                          handshake_op->done = true;
                        });
  const bool finished = s.run_until([&] { return handshake_op->done; }, deadline);
  result.http_status = static_cast<int>(response->result_int());
  result.body = response->body();
  if (!finished || handshake_op->ec) {
    if (!finished) {
      result.error = "handshake: timed out";
    } else if (handshake_op->ec != websocket::error::upgrade_declined) {
      result.error = "handshake: " + handshake_op->ec.message();
    }
    s.error = result.error.empty()
                  ? "upgrade refused with HTTP " + std::to_string(result.http_status)
                  : result.error;
    s.drop_socket();
    return result;
  }

  // From now on the WebSocket layer owns timing: no idle limit, no pings.
  tcp.expires_never();
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = kCloseTimeout;
  timeouts.idle_timeout = websocket::stream_base::none();
  timeouts.keep_alive_pings = false;
  s.ws->set_option(timeouts);
  s.open = true;
  result.upgraded = true;
  return result;
}

bool WsClient::send_text(const std::string& text) {
  Impl& s = *impl_;
  if (!s.ws || !s.open) {
    s.error = "send: not open";
    return false;
  }
  s.ws->text(true);
  auto payload = std::make_shared<std::string>(text);
  auto op = std::make_shared<Op>();
  s.ws->async_write(net::buffer(*payload), [op, payload](beast::error_code ec, std::size_t) {
    op->ec = ec;
    op->done = true;
  });
  if (!s.run_until([&] { return op->done; }, Clock::now() + kWriteTimeout)) {
    s.error = "send: timed out (the server does not read)";
    s.drop_socket();
    return false;
  }
  if (op->ec) {
    s.error = "send: " + op->ec.message();
    s.open = false;
    return false;
  }
  return true;
}

std::optional<nlohmann::json> WsClient::read_json(std::chrono::milliseconds timeout) {
  Impl& s = *impl_;
  if (!s.ws || (!s.open && !(s.read && s.read->done))) {
    if (s.error.empty()) s.error = "read: not open";
    return std::nullopt;
  }
  if (!s.read) s.start_read();
  if (!s.run_until([&] { return s.read->done; }, Clock::now() + timeout)) {
    s.error = "read: no frame within " + std::to_string(timeout.count()) + " ms";
    return std::nullopt;
  }
  const auto op = std::move(s.read);
  s.read.reset();
  if (op->ec) {
    s.on_read_error(op->ec);
    return std::nullopt;
  }
  std::string text = beast::buffers_to_string(s.buffer.data());
  s.buffer.consume(s.buffer.size());
  auto parsed = nlohmann::json::parse(text, nullptr, false);
  if (parsed.is_discarded()) {
    s.error = "read: frame is not JSON: " + text;
    return std::nullopt;
  }
  return parsed;
}

std::optional<nlohmann::json> WsClient::read_until_type(const std::string& type,
                                                        std::chrono::milliseconds timeout,
                                                        std::vector<nlohmann::json>* skipped) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    auto message = read_json(std::max(left, std::chrono::milliseconds(0)));
    if (!message) return std::nullopt;
    if (message->is_object() && message->value("type", std::string()) == type) return message;
    if (skipped != nullptr) skipped->push_back(std::move(*message));
  }
}

void WsClient::close() {
  Impl& s = *impl_;
  if (!s.ws || !s.open) return;
  s.closing = true;
  auto op = std::make_shared<Op>();
  s.ws->async_close(websocket::close_code::normal, [op](beast::error_code ec) {
    op->ec = ec;
    op->done = true;
  });
  // A pending read ends too, with the server's answering close frame.
  const bool finished = s.run_until([&] { return op->done && (!s.read || s.read->done); },
                                    Clock::now() + kCloseTimeout);
  s.open = false;
  if (!finished || op->ec) {
    if (!finished) s.error = "close: timed out";
    if (finished) s.error = "close: " + op->ec.message();
    s.drop_socket();
  }
}

void WsClient::drop() {
  impl_->drop_socket();
}

bool WsClient::is_open() const {
  return impl_->ws && impl_->open && impl_->ws->is_open();
}

std::optional<int> WsClient::close_code() const {
  return impl_->close_code;
}

std::string WsClient::error() const {
  return impl_->error;
}

}  // namespace ticketaid::testing
