#include "net/http_session.h"

#include <optional>

#include "core/ids.h"
#include "net/http_routes.h"
#include "net/websocket_session.h"
#include "util/log.h"

namespace ticketaid::net {
namespace {

constexpr std::string_view kTicketSocketPrefix = "/api/websocket/chat/";

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket socket, std::shared_ptr<const ServerContext> context)
      : stream_(std::move(socket)), context_(std::move(context)) {}

  void run() {
    asio::dispatch(stream_.get_executor(),
                   beast::bind_front_handler(&HttpSession::do_read, shared_from_this()));
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
      return reply(error_reply(413, ErrorCode::too_large, "the request body is too large"), false);
    }
    if (ec == http::error::header_limit) {
      return reply(error_reply(431, ErrorCode::too_large, "the request headers are too large"),
                   false);
    }
    if (ec) return;  // timeout, reset or a malformed request: drop the connection
    auto& request = parser_->get();
    if (websocket::is_upgrade(request)) return upgrade();
    HttpRequestView view{sv(request.method_string()), sv(request.target()), request.body()};
    reply(route_http(view, *context_), request.keep_alive());
  }

  void upgrade() {
    auto& request = parser_->get();
    std::string_view target = sv(request.target());
    if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
    if (!target.starts_with(kTicketSocketPrefix)) {
      return reply(error_reply(404, ErrorCode::not_found, "no WebSocket endpoint here"), false);
    }
    std::string ticket_id(target.substr(kTicketSocketPrefix.size()));
    if (!valid_ticket_id(ticket_id)) {
      return reply(error_reply(400, ErrorCode::bad_request,
                               "a ticket id is 1 to 128 characters of A-Z a-z 0-9 . _ : -"),
                   false);
    }
    stream_.expires_never();
    start_ticket_websocket(stream_.release_socket(), parser_->release(), std::move(ticket_id),
                           context_);
  }

  void reply(HttpReply r, bool keep_alive) {
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(r.status), 11);
    res->set(http::field::server, "ticketaid");
    res->set(http::field::content_type, r.content_type);
    res->keep_alive(keep_alive);
    res->body() = std::move(r.body);
    res->prepare_payload();
    http::async_write(stream_, *res, [self = shared_from_this(), res](error_code ec, std::size_t) {
      if (ec || !res->keep_alive()) return self->shutdown();
      self->do_read();
    });
  }

  void shutdown() {
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<const ServerContext> context_;
};

}  // namespace

void start_http_session(tcp::socket socket, std::shared_ptr<const ServerContext> context) {
  std::make_shared<HttpSession>(std::move(socket), std::move(context))->run();
}

}  // namespace ticketaid::net
