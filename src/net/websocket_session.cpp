#include "net/websocket_session.h"

#include <deque>
#include <variant>

#include "core/frames.h"
#include "net/access.h"
#include "net/ticket_messages.h"
#include "util/log.h"
#include "util/metrics.h"

namespace ticketaid::net {
namespace {

class WebsocketSession;

constexpr std::chrono::seconds kCloseTimeout{2};

// Forwards the frames of one reply onto the session's strand. One per request, so
// that frames of a reply the client has left (cancel, a new request) are dropped.
class SessionSink final : public ReplySink {
 public:
  SessionSink(std::weak_ptr<WebsocketSession> session, uint64_t id)
      : session_(std::move(session)), id_(id) {}
  void deliver(const Frame& frame, bool final) override;
  uint64_t id() const { return id_; }

 private:
  std::weak_ptr<WebsocketSession> session_;
  const uint64_t id_;
};

class WebsocketSession : public ClosableSocket,
                         public std::enable_shared_from_this<WebsocketSession> {
 public:
  WebsocketSession(tcp::socket socket, SocketTarget target, WebsocketAdmission admission,
                   std::shared_ptr<const ServerContext> context)
      : ws_(std::move(socket)),
        target_(std::move(target)),
        admission_(std::move(admission)),
        context_(std::move(context)) {
    metrics().connection_opened();
  }
  ~WebsocketSession() override {
    if (hub_id_ != 0) context_->sockets.remove(hub_id_);
    if (current_) current_->detach(false);
    metrics().connection_closed();
  }

  void run(http::request<http::string_body> request) {
    auto settings = context_->settings();
    websocket::stream_base::timeout timeout{};
    timeout.handshake_timeout = std::chrono::seconds(10);
    timeout.idle_timeout = std::chrono::seconds(2 * settings->ws_heartbeat_interval_s);
    timeout.keep_alive_pings = true;
    ws_.set_option(timeout);
    ws_.read_message_max(settings->ws_max_message_bytes);
    max_send_bytes_ = settings->ws_max_send_buffer_bytes;
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, "ticketaid"); }));
    ws_.async_accept(request,
                     beast::bind_front_handler(&WebsocketSession::on_accept, shared_from_this()));
  }

  // From any thread.
  void post_frame(uint64_t sink_id, Frame frame, bool final) {
    asio::post(ws_.get_executor(), [self = shared_from_this(), sink_id, frame = std::move(frame),
                                    final] { self->on_reply_frame(sink_id, frame, final); });
  }

 private:
  // The daemon is stopping (after its drain): close with 1001.
  void going_away() override {
    asio::post(ws_.get_executor(), [self = shared_from_this()] {
      if (!self->closing_) self->close_with(websocket::close_code::going_away, "server stopping");
    });
  }

  void on_accept(error_code ec) {
    if (ec) return fail(ec, "accept");
    hub_id_ = context_->sockets.add(weak_from_this());
    if (admission_.close_code != 0) {
      return close_with(static_cast<websocket::close_code>(admission_.close_code),
                        admission_.close_reason);
    }
    const Identity& who = admission_.identity;
    if (target_.kind == SocketTarget::chat && !who.anonymous && !who.admin) {
      return check_owner();
    }
    do_read();
  }

  // A chat session belongs to its user: another user's socket is closed with 4003.
  void check_owner() {
    context_->blocking([self = shared_from_this()] {
      auto found = self->context_->store.find_conversation(self->target_.id);
      // An unknown session is left to the chat service, which answers not_found; a
      // store that cannot answer admits nobody.
      const bool known = found.is_ok();
      const bool allowed =
          known && (!found.value() || self->admission_.identity.may_access(found.value()->user_id));
      asio::post(self->ws_.get_executor(), [self, known, allowed] {
        if (!known) {
          return self->close_with(websocket::close_code::internal_error,
                                  "the session's owner could not be checked; try again");
        }
        if (!allowed) {
          return self->close_with(static_cast<websocket::close_code>(kCloseForbidden),
                                  "this chat session belongs to another user");
        }
        self->do_read();
      });
    });
  }

  void do_read() {
    ws_.async_read(buffer_,
                   beast::bind_front_handler(&WebsocketSession::on_read, shared_from_this()));
  }

  void on_read(error_code ec, std::size_t) {
    if (ec) return fail(ec, "read");
    if (closing_) return;  // the close handshake reads on its own
    metrics().messages_total.add();
    if (!ws_.got_text()) {
      buffer_.consume(buffer_.size());
      send(frames::error(Status::error(ErrorCode::bad_request, "send text frames holding JSON")));
      return do_read();
    }
    std::string text = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    auto parsed = parse_ticket_message(text);
    if (parsed && counts_for_rate(parsed.value()))
      return rate_then_handle(std::move(parsed.value()));
    if (!parsed) {
      send(frames::error(parsed.status()));
    } else {
      std::visit([this](auto& message) { handle(message); }, parsed.value());
    }
    do_read();
  }

  // Whether the message asks for model work, which the rate limit counts (SPEC §4).
  static bool counts_for_rate(const TicketClientMessage& message) {
    return std::holds_alternative<AskMessage>(message) ||
           std::holds_alternative<FollowUpMessage>(message);
  }

  // Reading resumes once the limiter has decided, so that messages keep their order.
  void rate_then_handle(TicketClientMessage message) {
    const int per_minute = context_->settings()->rate_limit_messages_per_minute;
    take_rate(*context_, admission_.identity,
              [self = shared_from_this(), message = std::move(message),
               per_minute](RateDecision decision) mutable {
                asio::post(self->ws_.get_executor(),
                           [self, message = std::move(message), decision, per_minute]() mutable {
                             if (self->closing_)
                               return;  // the client left while the limiter decided
                             if (decision.allowed) {
                               std::visit([&](auto& m) { self->handle(m); }, message);
                             } else {
                               self->send(frames::error(rate_limited(decision, per_minute),
                                                        decision.retry_after_ms));
                             }
                             if (!self->closing_) self->do_read();
                           });
              });
  }

  void handle(AskMessage& ask) {
    if (target_.kind != SocketTarget::ticket) {
      return send(frames::error(
          Status::error(ErrorCode::bad_request,
                        "a chat session takes {\"type\": \"message\", \"content\": ...}")));
    }
    context_->tickets.request_answer({target_.id, std::move(ask.ticket_body), ask.regenerate},
                                     new_reply());
  }
  void handle(FollowUpMessage& message) {
    ChatMessageRequest request;
    (target_.kind == SocketTarget::ticket ? request.ticket_id : request.conversation_id) =
        target_.id;
    request.content = std::move(message.content);
    request.message_id = std::move(message.message_id);
    context_->chats.send(std::move(request), new_reply());
  }

  // The sink of the request just received; the previous reply is left.
  std::shared_ptr<SessionSink> new_reply() {
    leave_current_reply(false);
    current_ = std::make_shared<SessionSink>(weak_from_this(), ++next_sink_id_);
    return current_;
  }
  void handle(CancelMessage&) {
    const bool had_reply = current_ != nullptr;
    leave_current_reply(true);
    send(frames::error(Status::error(ErrorCode::cancelled,
                                     had_reply ? "cancelled by the client" : "nothing to cancel")));
  }
  void handle(PingMessage&) { send(frames::pong()); }

  void leave_current_reply(bool cancel) {
    if (!current_) return;
    auto sink = std::move(current_);
    sink->detach(cancel);
  }

  void on_reply_frame(uint64_t sink_id, const Frame& frame, bool final) {
    if (!current_ || current_->id() != sink_id) return;  // a reply this client left
    if (final) current_.reset();
    send(frame);
  }

  void send(const Frame& frame) {
    if (closing_) return;
    if (queued_bytes_ + frame->size() > max_send_bytes_) {
      spdlog::warn("{}: closing a client that stopped reading ({} bytes queued)", target_.id,
                   queued_bytes_);
      return close_with(websocket::close_code::policy_error, "client too slow");
    }
    queued_bytes_ += frame->size();
    queue_.push_back(frame);
    if (!writing_) do_write();
  }

  void do_write() {
    writing_ = true;
    ws_.text(true);
    ws_.async_write(asio::buffer(*queue_.front()),
                    beast::bind_front_handler(&WebsocketSession::on_write, shared_from_this()));
  }

  void on_write(error_code ec, std::size_t) {
    writing_ = false;
    if (ec) return fail(ec, "write");
    queued_bytes_ -= queue_.front()->size();
    queue_.pop_front();
    if (!queue_.empty() && !closing_) do_write();
  }

  void close_with(websocket::close_code code, std::string_view reason) {
    closing_ = true;
    leave_current_reply(false);
    if (writing_) {
      // A write is stuck on a peer that does not read: it could not take the close
      // frame either. The connection is torn down; the pending write ends aborted.
      while (queue_.size() > 1) {
        queue_.pop_back();  // the front one is being written: it stays alive
      }
      error_code ignored;
      beast::get_lowest_layer(ws_).socket().close(ignored);
      return;
    }
    queue_.clear();
    websocket::stream_base::timeout timeout{};
    ws_.get_option(timeout);
    timeout.handshake_timeout = kCloseTimeout;  // a peer that never answers the close
    ws_.set_option(timeout);
    // A close reason is at most 123 bytes (RFC 6455 §5.5).
    ws_.async_close(
        websocket::close_reason(
            code, beast::string_view(reason.data(), std::min<std::size_t>(reason.size(), 123))),
        [self = shared_from_this()](error_code) {});
  }

  void fail(error_code ec, const char* what) {
    leave_current_reply(false);
    closing_ = true;
    if (ec == websocket::error::closed || ec == asio::error::operation_aborted ||
        ec == beast::error::timeout || ec == asio::error::eof ||
        ec == asio::error::connection_reset) {
      return;
    }
    spdlog::debug("{}: websocket {}: {}", target_.id, what, ec.message());
  }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  const SocketTarget target_;
  const WebsocketAdmission admission_;
  std::shared_ptr<const ServerContext> context_;

  std::shared_ptr<SessionSink> current_;  // the reply this client waits for
  uint64_t next_sink_id_ = 0;
  uint64_t hub_id_ = 0;  // in context_->sockets once accepted
  std::deque<Frame> queue_;
  std::size_t queued_bytes_ = 0;
  std::size_t max_send_bytes_ = 1 << 20;
  bool writing_ = false;
  bool closing_ = false;
};

void SessionSink::deliver(const Frame& frame, bool final) {
  if (auto session = session_.lock()) session->post_frame(id_, frame, final);
}

}  // namespace

void start_websocket(tcp::socket socket, http::request<http::string_body> request,
                     SocketTarget target, WebsocketAdmission admission,
                     std::shared_ptr<const ServerContext> context) {
  std::make_shared<WebsocketSession>(std::move(socket), std::move(target), std::move(admission),
                                     std::move(context))
      ->run(std::move(request));
}

}  // namespace ticketaid::net
