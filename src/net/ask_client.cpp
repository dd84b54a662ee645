// The `ticketaid ask` WebSocket client over Beast (see ask_client.h).
//
// One io_context, run by the calling thread; every handler runs there, so the
// exchange needs no locks. Its phases:
//   connecting  resolve, TCP connect and the upgrade, under connect_timeout;
//   exchanging  the request is written and frames are read and handed over;
//   cancelling  after a signal: {"type":"cancel"} is sent and frames are read (not
//               handed over) until the daemon acknowledges with error or done;
//   closing     a close handshake, under cancel_grace;
//   ended       the socket is closed and the timers and signals are cancelled, so
//               run() returns once the remaining handlers have seen it.
// One write is in flight at a time (a small queue holds the rest), and no read is
// started once the close handshake is under way (Beast's close reads by itself).
#include "net/ask_client.h"

#include <boost/asio/signal_set.hpp>

#include <csignal>
#include <deque>
#include <utility>

#include "net/beast.h"

namespace ticketaid {
namespace {

using namespace ticketaid::net;
using Kind = AskExchangeOutcome::Kind;
using Milliseconds = std::chrono::milliseconds;

constexpr std::size_t kMaxFrameBytes = std::size_t{64} << 20;  // a long cached answer fits
constexpr std::string_view kSocketPath = "/api/websocket/chat/";

AskExchangeOutcome make_outcome(Kind kind, std::string detail) {
  AskExchangeOutcome outcome;
  outcome.kind = kind;
  outcome.detail = std::move(detail);
  return outcome;
}

std::string seconds_text(Milliseconds ms) {
  if (ms.count() % 1000 == 0) return std::to_string(ms.count() / 1000) + " s";
  return std::to_string(ms.count()) + " ms";
}

bool unreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~' || c == ':';
}

// The ticket id as one path segment: the daemon decodes it and judges it.
std::string encode_segment(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (unreserved(c)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string host_for_url(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

std::string clip(std::string text) {
  constexpr std::size_t kMax = 200;
  if (text.size() > kMax) text = text.substr(0, kMax) + "...";
  return text;
}

class Exchange {
 public:
  Exchange(const AskExchangeOptions& options, const FrameHandler& on_frame)
      : options_(options),
        on_frame_(on_frame),
        resolver_(ioc_),
        ws_(ioc_),
        signals_(ioc_),
        phase_timer_(ioc_),
        deadline_(ioc_) {}

  AskExchangeOutcome run() {
    error_code ignored;
    signals_.add(SIGINT, ignored);
    signals_.add(SIGTERM, ignored);
    wait_for_signal();
    if (options_.timeout.count() > 0) {
      deadline_.expires_after(options_.timeout);
      deadline_.async_wait([this](error_code ec) {
        if (!ec) on_deadline();
      });
    }
    arm_phase_timer(options_.connect_timeout);
    resolver_.async_resolve(
        options_.server.host, options_.server.port,
        [this](error_code ec, tcp::resolver::results_type results) { on_resolve(ec, results); });
    ioc_.run();
    return outcome_;
  }

 private:
  enum class Phase { connecting, exchanging, cancelling, closing, ended };

  // --- connecting ---------------------------------------------------------------

  void on_resolve(error_code ec, const tcp::resolver::results_type& results) {
    if (phase_ == Phase::ended) return;
    if (ec) {
      return end(make_outcome(Kind::connect_failed,
                              "cannot resolve " + options_.server.host + ": " + ec.message()));
    }
    beast::get_lowest_layer(ws_).async_connect(
        results, [this](error_code ec, const tcp::endpoint&) { on_connect(ec); });
  }

  void on_connect(error_code ec) {
    if (phase_ == Phase::ended) return;
    if (ec) {
      return end(make_outcome(Kind::connect_failed,
                              "cannot connect to " + options_.server.text() + ": " + ec.message()));
    }
    ws_.set_option(websocket::stream_base::decorator([](websocket::request_type& request) {
      request.set(http::field::user_agent, "ticketaid-ask");
    }));
    ws_.read_message_max(kMaxFrameBytes);
    const std::string host = host_for_url(options_.server.host) + ":" + options_.server.port;
    const std::string target =
        options_.server.path_prefix + std::string(kSocketPath) + encode_segment(options_.ticket_id);
    ws_.async_handshake(response_, host, target, [this](error_code ec) { on_handshake(ec); });
  }

  void on_handshake(error_code ec) {
    if (phase_ == Phase::ended) return;
    if (ec == websocket::error::upgrade_declined) {
      AskExchangeOutcome refused =
          make_outcome(Kind::refused, "HTTP " + std::to_string(response_.result_int()) + " " +
                                          std::string(sv(response_.reason())));
      refused.http_status = static_cast<int>(response_.result_int());
      refused.http_body = response_.body();
      return end(std::move(refused));
    }
    if (ec) {
      return end(make_outcome(Kind::broken, "the WebSocket upgrade with " + options_.server.text() +
                                                " failed: " + ec.message()));
    }
    phase_ = Phase::exchanging;
    disarm_phase_timer();
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = std::chrono::seconds(5);  // the closing handshake
    timeouts.idle_timeout = options_.idle_timeout;
    timeouts.keep_alive_pings = true;  // a silent daemon is pinged before it is given up
    ws_.set_option(timeouts);
    queue_write(options_.message);
    do_read();
  }

  // --- exchanging ---------------------------------------------------------------

  void do_read() {
    ws_.async_read(buffer_, [this](error_code ec, std::size_t) { on_read(ec); });
  }

  void on_read(error_code ec) {
    if (phase_ == Phase::ended) return;
    if (ec) return on_read_error(ec);
    std::string text = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    if (!ws_.got_text()) {
      return end(make_outcome(Kind::broken, "the daemon sent a binary frame"));
    }
    nlohmann::json frame = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!frame.is_object()) {
      return end(make_outcome(Kind::broken,
                              "the daemon sent a frame that is not a JSON object: " + clip(text)));
    }
    if (phase_ == Phase::exchanging) {
      if (on_frame_(frame) == FrameAction::last) {
        return begin_close(make_outcome(Kind::finished, "the reply is complete"));
      }
    } else if (phase_ == Phase::cancelling) {
      const std::string type = frame.value("type", "");
      if (type == "error" || type == "done") return begin_close(outcome_);
    }
    if (phase_ == Phase::exchanging || phase_ == Phase::cancelling) do_read();
  }

  void on_read_error(error_code ec) {
    if (phase_ == Phase::closing) {
      // The close handshake's own completion ends the exchange once it was sent.
      if (!close_sent_) end(outcome_);
      return;
    }
    if (phase_ == Phase::cancelling) return end(outcome_);
    if (ec == websocket::error::closed) {
      const auto& reason = ws_.reason();
      AskExchangeOutcome closed =
          make_outcome(Kind::closed, std::string(reason.reason.data(), reason.reason.size()));
      closed.close_code = static_cast<int>(reason.code);
      return end(std::move(closed));
    }
    if (ec == beast::error::timeout) {
      return end(make_outcome(Kind::broken, "the daemon stopped answering (nothing for " +
                                                seconds_text(options_.idle_timeout) + ")"));
    }
    end(make_outcome(Kind::broken, "the connection to the daemon failed: " + ec.message()));
  }

  // --- writing and closing ------------------------------------------------------

  void queue_write(std::string text) {
    writes_.push_back(std::move(text));
    if (!writing_) do_write();
  }

  // Writes the next queued frame; with the queue empty, starts a wanted close.
  void do_write() {
    if (writes_.empty()) {
      if (close_wanted_ && !close_sent_) do_close();
      return;
    }
    writing_ = true;
    ws_.text(true);
    ws_.async_write(asio::buffer(writes_.front()),
                    [this](error_code ec, std::size_t) { on_write(ec); });
  }

  void on_write(error_code ec) {
    writing_ = false;
    if (phase_ == Phase::ended) return;
    if (ec) {
      if (phase_ == Phase::closing || phase_ == Phase::cancelling) return end(outcome_);
      return end(make_outcome(Kind::broken, "cannot send to the daemon: " + ec.message()));
    }
    writes_.pop_front();
    do_write();
  }

  // Ends with a close handshake, bounded by cancel_grace.
  void begin_close(AskExchangeOutcome result) {
    if (phase_ == Phase::closing || phase_ == Phase::ended) return;
    outcome_ = std::move(result);
    phase_ = Phase::closing;
    arm_phase_timer(options_.cancel_grace);
    close_wanted_ = true;
    if (!writing_) do_write();
  }

  void do_close() {
    close_sent_ = true;
    ws_.async_close(websocket::close_code::normal, [this](error_code) { end(outcome_); });
  }

  void end(AskExchangeOutcome result) {
    if (phase_ == Phase::ended) return;
    phase_ = Phase::ended;
    outcome_ = std::move(result);
    error_code ignored;
    signals_.cancel(ignored);
    phase_timer_.cancel();
    deadline_.cancel();
    resolver_.cancel();
    beast::get_lowest_layer(ws_).close();
  }

  // --- signals and timers -------------------------------------------------------

  void wait_for_signal() {
    signals_.async_wait([this](error_code ec, int signal_number) {
      if (!ec) on_signal(signal_number);
    });
  }

  void on_signal(int signal_number) {
    if (phase_ == Phase::ended) return;
    AskExchangeOutcome interrupted = make_outcome(
        Kind::interrupted, phase_ == Phase::connecting ? "interrupted before the request was sent"
                                                       : "interrupted; the request was cancelled");
    interrupted.signal_number = signal_number;
    if (phase_ == Phase::exchanging) {
      // Tell the daemon, then wait (bounded) for its acknowledgement; a second
      // signal ends at once.
      outcome_ = std::move(interrupted);
      phase_ = Phase::cancelling;
      arm_phase_timer(options_.cancel_grace);
      queue_write(R"({"type":"cancel"})");
      return wait_for_signal();
    }
    if (phase_ == Phase::connecting) return end(std::move(interrupted));
    end(outcome_);  // a second signal while cancelling or closing: stop waiting
  }

  void on_deadline() {
    if (phase_ == Phase::ended) return;
    AskExchangeOutcome timed_out =
        make_outcome(Kind::timed_out, "no complete reply within " + seconds_text(options_.timeout));
    if (phase_ == Phase::exchanging) return begin_close(std::move(timed_out));
    if (phase_ == Phase::connecting) end(std::move(timed_out));
  }

  // One timer bounds the phase that is running; a generation number tells a stale
  // expiry (one queued before the timer was re-armed) from the current one.
  void arm_phase_timer(Milliseconds after) {
    const uint64_t armed = ++timer_generation_;
    phase_timer_.expires_after(after);
    phase_timer_.async_wait([this, armed](error_code ec) {
      if (ec || armed != timer_generation_ || phase_ == Phase::ended) return;
      if (phase_ == Phase::connecting) {
        return end(make_outcome(Kind::connect_failed, "no connection to " + options_.server.text() +
                                                          " within " +
                                                          seconds_text(options_.connect_timeout)));
      }
      end(outcome_);  // cancelling or closing: the daemon did not answer in time
    });
  }

  void disarm_phase_timer() {
    ++timer_generation_;
    phase_timer_.cancel();
  }

  const AskExchangeOptions& options_;
  const FrameHandler& on_frame_;
  asio::io_context ioc_;
  tcp::resolver resolver_;
  websocket::stream<beast::tcp_stream> ws_;
  asio::signal_set signals_;
  asio::steady_timer phase_timer_;
  asio::steady_timer deadline_;
  beast::flat_buffer buffer_;
  websocket::response_type response_;
  std::deque<std::string> writes_;
  bool writing_ = false;
  bool close_wanted_ = false;
  bool close_sent_ = false;
  uint64_t timer_generation_ = 0;
  Phase phase_ = Phase::connecting;
  AskExchangeOutcome outcome_;
};

}  // namespace

std::string WsServerUrl::text() const {
  return "ws://" + host_for_url(host) + ":" + port + path_prefix;
}

Result<WsServerUrl> parse_ws_url(std::string_view url) {
  const auto bad = [&](const std::string& why) {
    return Status::error(ErrorCode::bad_request, "bad URL " + std::string(url) + ": " + why);
  };
  std::string_view rest = url;
  const auto scheme_end = rest.find("://");
  if (scheme_end != std::string_view::npos) {
    std::string scheme(rest.substr(0, scheme_end));
    for (char& c : scheme) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    if (scheme == "wss" || scheme == "https") {
      return bad(
          "TLS is not supported; the daemon speaks ws:// (reach it directly, e.g. "
          "ws://127.0.0.1:8080)");
    }
    if (scheme != "ws" && scheme != "http") return bad("the scheme must be ws://");
    rest.remove_prefix(scheme_end + 3);
  }
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  if (path.find_first_of("?#") != std::string_view::npos) {
    return bad("a query or fragment is not allowed");
  }
  while (!path.empty() && path.back() == '/') {
    path.remove_suffix(1);
  }
  if (authority.find('@') != std::string_view::npos) return bad("user information is not allowed");

  WsServerUrl parsed;
  std::string_view port;
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return bad("an unclosed [ in the host");
    parsed.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && !after.starts_with(':')) return bad("text after the ] of the host");
    if (!after.empty()) port = after.substr(1);
  } else {
    const auto colon = authority.find(':');
    if (colon != authority.rfind(':')) return bad("write an IPv6 address in brackets: [::1]");
    parsed.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (parsed.host.empty()) return bad("no host");
  if (scheme_end == std::string_view::npos && port.empty()) return bad("no port");
  if (port.empty()) port = "80";
  int number = 0;
  for (char c : port) {
    if (c < '0' || c > '9' || number > 65535) return bad("the port must be a number");
    number = number * 10 + (c - '0');
  }
  if (number < 1 || number > 65535) return bad("the port must be from 1 to 65535");
  parsed.port = std::to_string(number);
  parsed.path_prefix = std::string(path);
  return parsed;
}

AskExchangeOutcome run_ask_exchange(const AskExchangeOptions& options,
                                    const FrameHandler& on_frame) {
  Exchange exchange(options, on_frame);
  return exchange.run();
}

}  // namespace ticketaid
