#include "net/http_session.h"

#include <atomic>
#include <deque>
#include <mutex>
#include <optional>

#include "core/ids.h"
#include "net/access.h"
#include "net/http_api.h"
#include "net/router.h"
#include "net/websocket_session.h"
#include "util/log.h"

namespace ticketaid::net {
namespace {

constexpr std::string_view kTicketSocketPrefix = "/api/websocket/chat/";
constexpr std::string_view kChatSocketPrefix = "/ws/sessions/";

class HttpSession;

// Every value of a header that may come more than once, joined with ", " in order
// (RFC 9110 §5.3): a proxy may add its own X-Forwarded-For line beside the client's.
std::string all_values(const http::request<http::string_body>& request, std::string_view name) {
  std::string joined;
  for (auto [it, end] = request.equal_range(beast::string_view(name.data(), name.size()));
       it != end; ++it) {
    if (!joined.empty()) joined += ", ";
    joined += sv(it->value());
  }
  return joined;
}

// Answers one request on behalf of a handler, from any thread, by posting onto the
// session's strand.
class Responder final : public HttpResponder {
 public:
  explicit Responder(std::weak_ptr<HttpSession> session) : session_(std::move(session)) {}
  void reply(HttpReply reply) override;
  void start_stream(int status, std::string content_type) override;
  void write_chunk(std::string chunk) override;
  void end_stream() override;
  bool closed() const override { return closed_.load(); }
  void on_close(std::function<void()> hook) override {
    {
      std::lock_guard lock(mutex_);
      if (!closed_.load()) {
        hook_ = std::move(hook);
        return;
      }
    }
    hook();
  }
  // The session saw the client go away.
  void mark_closed() {
    std::function<void()> hook;
    {
      std::lock_guard lock(mutex_);
      if (closed_.exchange(true)) return;
      hook = std::move(hook_);
    }
    if (hook) hook();
  }

 private:
  template <class F>
  void post(F&& f);

  std::weak_ptr<HttpSession> session_;
  std::atomic<bool> closed_{false};
  std::mutex mutex_;
  std::function<void()> hook_;
};

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket socket, std::shared_ptr<const ServerContext> context)
      : stream_(std::move(socket)), context_(std::move(context)) {}

  void run() {
    asio::dispatch(stream_.get_executor(),
                   beast::bind_front_handler(&HttpSession::do_read, shared_from_this()));
  }

  asio::any_io_executor executor() { return stream_.get_executor(); }

  // --- the responder's operations, on the strand ---

  void send_reply(HttpReply r) {
    if (!responder_ || streaming_) return;
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(r.status), 11);
    res->set(http::field::server, "ticketaid");
    if (r.status != 204 && r.status != 304) res->set(http::field::content_type, r.content_type);
    for (auto& [name, value] : r.headers)
      res->set(name, value);
    res->keep_alive(keep_alive_);
    res->body() = std::move(r.body);
    res->prepare_payload();
    // HEAD: the headers GET would have (Content-Length included), and no body.
    if (parser_ && parser_->get().method() == http::verb::head) res->body().clear();
    stream_.expires_after(std::chrono::seconds(30));
    http::async_write(stream_, *res, [self = shared_from_this(), res](error_code ec, std::size_t) {
      self->on_response_written(ec);
    });
  }

  void start_stream(int status, const std::string& content_type) {
    if (!responder_ || streaming_) return;
    streaming_ = true;
    std::string head = "HTTP/1.1 " + std::to_string(status) + " " +
                       std::string(http::obsolete_reason(static_cast<http::status>(status))) +
                       "\r\nServer: ticketaid\r\nContent-Type: " + content_type +
                       "\r\nCache-Control: no-store\r\nTransfer-Encoding: chunked\r\n";
    head += keep_alive_ ? "\r\n" : "Connection: close\r\n\r\n";
    enqueue(std::move(head));
  }

  void write_chunk(const std::string& chunk) {
    if (!streaming_ || chunk.empty()) return;
    char size[20];
    std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
    enqueue(size + chunk + "\r\n");
  }

  void end_stream() {
    if (!streaming_) return;
    stream_ended_ = true;
    enqueue("0\r\n\r\n");
  }

 private:
  void do_read() {
    auto settings = context_->settings();
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(settings->server_max_header_bytes));
    parser_->body_limit(settings->server_max_body_bytes);
    stream_.expires_after(std::chrono::seconds(settings->server_header_timeout_s));
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&HttpSession::on_read, shared_from_this()));
  }

  void on_read(error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream) return shutdown();
    if (ec == http::error::body_limit) {
      return answer_now(error_reply(413, ErrorCode::too_large, "the request body is too large"));
    }
    if (ec == http::error::header_limit) {
      return answer_now(
          error_reply(431, ErrorCode::too_large, "the request headers are too large"));
    }
    if (ec) return;  // timeout, reset or a malformed request: drop the connection
    auto& request = parser_->get();
    if (websocket::is_upgrade(request)) return upgrade();

    keep_alive_ = request.keep_alive();
    HttpRequest view;
    view.method = std::string(sv(request.method_string()));
    std::string_view target = sv(request.target());
    auto q = target.find('?');
    view.path = std::string(target.substr(0, q));  // decoded by the router, per segment
    if (q != std::string_view::npos) view.query = parse_query(target.substr(q + 1));
    view.body = std::move(request.body());
    view.accept = std::string(sv(request[http::field::accept]));
    view.content_type = std::string(sv(request[http::field::content_type]));
    view.accept_encoding = std::string(sv(request[http::field::accept_encoding]));
    view.if_none_match = std::string(sv(request[http::field::if_none_match]));
    view.peer = peer_address();
    view.forwarded_for = all_values(request, "X-Forwarded-For");
    view.origin = std::string(sv(request[http::field::origin]));
    view.host = std::string(sv(request[http::field::host]));
    view.authorization = std::string(sv(request[http::field::authorization]));
    view.cookie = std::string(sv(request[http::field::cookie]));
    view.client_address = client_address_of({view.peer, view.forwarded_for, {}, {}, {}, {}, {}},
                                            *context_->settings());

    stream_.expires_never();  // a handler may wait for a whole generation
    responder_ = std::make_shared<Responder>(weak_from_this());
    watch_for_close();
    dispatch_http(std::move(view), responder_, context_);
  }

  // Reads while a handler works, so that a client that goes away is noticed even
  // when nothing is being written. Bytes that arrive (a pipelined request) are kept.
  void watch_for_close() {
    if (watching_ || buffer_.size() > 64 * 1024) return;
    watching_ = true;
    stream_.socket().async_read_some(buffer_.prepare(4096),
                                     [self = shared_from_this()](error_code ec, std::size_t n) {
                                       self->watching_ = false;
                                       if (ec == asio::error::operation_aborted)
                                         return;  // the answer is complete
                                       if (ec) {
                                         if (self->responder_) self->responder_->mark_closed();
                                         self->peer_gone_ = true;
                                         return;
                                       }
                                       self->buffer_.commit(n);
                                       if (self->responder_) self->watch_for_close();
                                     });
  }

  void answer_now(HttpReply r) {
    keep_alive_ = false;
    responder_ = std::make_shared<Responder>(weak_from_this());
    send_reply(std::move(r));
  }

  std::string peer_address() {
    error_code ignored;
    return stream_.socket().remote_endpoint(ignored).address().to_string();
  }

  void upgrade() {
    auto& request = parser_->get();
    std::string_view target = sv(request.target());
    std::string query_token;
    if (auto q = target.find('?'); q != std::string_view::npos) {
      auto query = parse_query(target.substr(q + 1));
      if (auto token = query.find("token"); token != query.end()) query_token = token->second;
      target = target.substr(0, q);
    }
    SocketTarget socket_target;
    if (target.starts_with(kTicketSocketPrefix)) {
      socket_target = {SocketTarget::ticket,
                       std::string(target.substr(kTicketSocketPrefix.size()))};
      if (!valid_ticket_id(socket_target.id)) {
        return answer_now(error_reply(400, ErrorCode::bad_request,
                                      "a ticket id is 1 to 128 characters of A-Z a-z 0-9 . _ : -"));
      }
    } else if (target.starts_with(kChatSocketPrefix)) {
      socket_target = {SocketTarget::chat, std::string(target.substr(kChatSocketPrefix.size()))};
      if (!valid_session_id(socket_target.id)) {
        return answer_now(error_reply(400, ErrorCode::bad_request,
                                      "a session id is 1 to 64 characters of A-Z a-z 0-9 _ -"));
      }
    } else {
      return answer_now(error_reply(404, ErrorCode::not_found, "no WebSocket endpoint here"));
    }
    // Access control (net/access.h): a bad Origin or a full server is refused before
    // the upgrade; bad credentials and a user's connection limit after it, with a close
    // code a browser can see.
    const auto settings = context_->settings();
    const std::string peer = peer_address();
    const std::string forwarded_for = all_values(request, "X-Forwarded-For");
    const RequestFacts facts{peer,
                             forwarded_for,
                             sv(request[http::field::origin]),
                             sv(request[http::field::host]),
                             sv(request[http::field::authorization]),
                             sv(request[http::field::cookie]),
                             query_token};
    const std::string client = client_address_of(facts, *settings);
    WebsocketAdmission admission;
    auto identity =
        admit(facts, client, /*public_route=*/false, *settings, context_->authenticator);
    if (!identity && identity.status().code() == ErrorCode::forbidden) {
      return answer_now(error_reply(identity.status()));
    }
    if (!identity) {
      admission.close_code = kCloseInvalidToken;
      admission.close_reason = identity.status().message();
    } else {
      admission.identity = std::move(identity.value());
      auto place =
          context_->connections.admit(admission.identity.user, settings->limits_max_connections,
                                      settings->limits_max_connections_per_user);
      if (place.refusal == ConnectionRegistry::Refusal::total) {
        return answer_now(
            error_reply(503, ErrorCode::busy, "too many connections; try again later"));
      }
      if (place.refusal == ConnectionRegistry::Refusal::per_user) {
        admission.close_code = kCloseTooManyConnections;
        admission.close_reason = "too many connections";
      }
      admission.lease = std::move(place.lease);
    }
    stream_.expires_never();
    start_websocket(stream_.release_socket(), parser_->release(), std::move(socket_target),
                    std::move(admission), context_);
  }

  void enqueue(std::string bytes) {
    if (peer_gone_) return;
    queued_bytes_ += bytes.size();
    if (queued_bytes_ > context_->settings()->ws_max_send_buffer_bytes) {
      spdlog::warn("closing an HTTP stream whose client stopped reading");
      if (responder_) responder_->mark_closed();
      peer_gone_ = true;
      error_code ignored;
      stream_.socket().close(ignored);
      return;
    }
    out_.push_back(std::move(bytes));
    if (!writing_) do_write();
  }

  void do_write() {
    writing_ = true;
    asio::async_write(
        stream_, asio::buffer(out_.front()),
        [self = shared_from_this()](error_code ec, std::size_t) { self->on_stream_write(ec); });
  }

  void on_stream_write(error_code ec) {
    writing_ = false;
    if (ec) {
      if (responder_) responder_->mark_closed();
      peer_gone_ = true;
      return;
    }
    queued_bytes_ -= out_.front().size();
    out_.pop_front();
    if (!out_.empty()) return do_write();
    if (stream_ended_) on_response_written(ec);
  }

  void on_response_written(error_code ec) {
    responder_.reset();
    streaming_ = stream_ended_ = false;
    if (ec || !keep_alive_ || peer_gone_) return shutdown();
    // A watching read still pending keeps the socket; the next request waits for it.
    if (watching_) {
      stream_.socket().cancel();
      asio::post(stream_.get_executor(), [self = shared_from_this()] { self->resume_reading(); });
      return;
    }
    do_read();
  }

  void resume_reading() {
    if (watching_) {  // the cancelled read has not completed yet
      asio::post(stream_.get_executor(), [self = shared_from_this()] { self->resume_reading(); });
      return;
    }
    if (peer_gone_) return shutdown();
    do_read();
  }

  void shutdown() {
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<const ServerContext> context_;

  std::shared_ptr<Responder> responder_;  // the request being answered
  bool keep_alive_ = false;
  bool watching_ = false;
  bool peer_gone_ = false;
  bool streaming_ = false;
  bool stream_ended_ = false;
  bool writing_ = false;
  std::deque<std::string> out_;  // a streamed response's pending bytes
  std::size_t queued_bytes_ = 0;
};

template <class F>
void Responder::post(F&& f) {
  if (auto session = session_.lock()) {
    asio::post(session->executor(), [session, f = std::forward<F>(f)]() mutable { f(*session); });
  }
}

void Responder::reply(HttpReply r) {
  post([r = std::move(r)](HttpSession& s) mutable { s.send_reply(std::move(r)); });
}
void Responder::start_stream(int status, std::string content_type) {
  post([status, content_type = std::move(content_type)](HttpSession& s) {
    s.start_stream(status, content_type);
  });
}
void Responder::write_chunk(std::string chunk) {
  post([chunk = std::move(chunk)](HttpSession& s) { s.write_chunk(chunk); });
}
void Responder::end_stream() {
  post([](HttpSession& s) { s.end_stream(); });
}

}  // namespace

void start_http_session(tcp::socket socket, std::shared_ptr<const ServerContext> context) {
  std::make_shared<HttpSession>(std::move(socket), std::move(context))->run();
}

}  // namespace ticketaid::net
