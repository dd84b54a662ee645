// The client side of the ticket WebSocket (SPEC §2), for `ticketaid ask`: connects
// to a running daemon's /api/websocket/chat/{ticketId}, sends one request frame and
// hands every reply frame to the caller until the caller says the reply is over.
// Beast stays in ask_client.cpp; this header is plain C++.
//
// Thread-safety: run_ask_exchange blocks the calling thread and runs all its work
// (and every call of the frame handler) on that thread. While it runs it catches
// SIGINT and SIGTERM for the whole process; call it from one thread at a time.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "util/status.h"

namespace ticketaid {

// Where a daemon listens, from "ws://HOST[:PORT][/PREFIX]" (http:// is accepted as a
// synonym; the port defaults to 80). PREFIX is kept for daemons behind a proxy path.
struct WsServerUrl {
  std::string host;  // without brackets for an IPv6 literal
  std::string port;
  std::string path_prefix;   // "" or "/prefix" without a trailing slash
  std::string text() const;  // "ws://HOST:PORT/PREFIX" as used, for messages
};

// bad_request naming what is wrong (wss:// is refused: the daemon speaks plain
// WebSocket and sits behind a TLS proxy when it needs one).
Result<WsServerUrl> parse_ws_url(std::string_view url);

struct AskExchangeOptions {
  WsServerUrl server;
  std::string ticket_id;  // percent-encoded into the path; the daemon checks it
  std::string message;    // the request frame (JSON text)
  std::chrono::milliseconds connect_timeout{10'000};  // resolve, connect and upgrade
  std::chrono::milliseconds timeout{0};               // the whole exchange; 0: no limit of its own
  // After SIGINT/SIGTERM: how long to wait for the daemon to acknowledge the cancel
  // before the connection is dropped.
  std::chrono::milliseconds cancel_grace{3'000};
  // The connection is declared dead when nothing (not even a pong to our pings)
  // arrives for this long.
  std::chrono::milliseconds idle_timeout{60'000};
};

// What the handler tells the exchange after each frame.
enum class FrameAction { more, last };
using FrameHandler = std::function<FrameAction(const nlohmann::json& frame)>;

struct AskExchangeOutcome {
  enum class Kind {
    finished,        // the handler returned FrameAction::last
    interrupted,     // a signal arrived; the request was cancelled ({"type": "cancel"})
    connect_failed,  // no TCP connection (refused, unreachable, timed out)
    refused,         // the daemon answered the upgrade with an HTTP error
    closed,          // the daemon closed the WebSocket before the reply was over
    timed_out,       // AskExchangeOptions::timeout passed
    broken,          // the connection failed or the daemon broke the protocol
  };
  Kind kind = Kind::broken;
  std::string detail;     // what happened, for a person
  int signal_number = 0;  // interrupted
  int http_status = 0;    // refused
  std::string http_body;  // refused: the response body (a JSON error from ticketaid)
  int close_code = 0;     // closed
};

// Runs one exchange to its end. on_frame gets every frame that is a JSON object, in
// order, until it returns last; frames that arrive after a signal are not passed on.
AskExchangeOutcome run_ask_exchange(const AskExchangeOptions& options,
                                    const FrameHandler& on_frame);

}  // namespace ticketaid
