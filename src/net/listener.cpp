// The listening socket: accepts connections, each onto its own strand, and hands
// them to an HttpSession.
#include <sys/socket.h>
#include <unistd.h>

#include "net/beast.h"
#include "net/http_session.h"
#include "net/server.h"
#include "util/log.h"

namespace ticketaid {
namespace {

using namespace ticketaid::net;

class Listener final : public Server, public std::enable_shared_from_this<Listener> {
 public:
  Listener(asio::io_context& ioc, std::shared_ptr<const ServerContext> context)
      : ioc_(ioc), acceptor_(asio::make_strand(ioc)), retry_(ioc), context_(std::move(context)) {}

  Status bind(const std::string& listen) {
    auto colon = listen.rfind(':');
    if (colon == std::string::npos) {
      return Status::error(ErrorCode::bad_request, "server.listen must be HOST:PORT");
    }
    std::string host = listen.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    const std::string port = listen.substr(colon + 1);
    error_code ec;
    tcp::resolver resolver(ioc_);
    auto results = resolver.resolve(host, port, tcp::resolver::passive, ec);
    if (ec || results.empty()) {
      return Status::error(ErrorCode::internal, "cannot resolve " + listen + ": " + ec.message());
    }
    tcp::endpoint endpoint = *results.begin();
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status::error(ErrorCode::internal, "cannot listen on " + listen + ": " + ec.message());
    }
    return Status::ok();
  }

  // Takes over a socket that is already bound and listening (socket activation).
  Status adopt(int fd) {
    sockaddr_storage address{};
    socklen_t length = sizeof(address);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      ::close(fd);
      return Status::error(ErrorCode::internal, "the activated socket has no address");
    }
    error_code ec;
    acceptor_.assign(address.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd, ec);
    if (ec) {
      ::close(fd);
      return Status::error(ErrorCode::internal, "cannot use the activated socket: " + ec.message());
    }
    return Status::ok();
  }

  void start() { do_accept(); }

  std::string local_address() const override {
    error_code ec;
    auto endpoint = acceptor_.local_endpoint(ec);
    if (ec) return "";
    auto address = endpoint.address();
    std::string host = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
    return host + ":" + std::to_string(endpoint.port());
  }

  void stop_accepting() override {
    asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
      error_code ignored;
      self->acceptor_.close(ignored);
      self->retry_.cancel();
    });
  }

 private:
  void do_accept() {
    acceptor_.async_accept(asio::make_strand(ioc_),
                           beast::bind_front_handler(&Listener::on_accept, shared_from_this()));
  }

  void on_accept(error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // Out of descriptors or memory: pause instead of spinning on the error.
      spdlog::warn("accept failed: {}", ec.message());
      retry_.expires_after(std::chrono::milliseconds(100));
      retry_.async_wait([self = shared_from_this()](error_code wait_ec) {
        if (!wait_ec) self->do_accept();
      });
      return;
    }
    socket.set_option(tcp::no_delay(true), ec);
    start_http_session(std::move(socket), context_);
    do_accept();
  }

  asio::io_context& ioc_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_;
  std::shared_ptr<const ServerContext> context_;
};

// Keeps the listener alive while its accept loop runs; Server is the handle.
class ServerHandle final : public Server {
 public:
  explicit ServerHandle(std::shared_ptr<Listener> listener) : listener_(std::move(listener)) {}
  ~ServerHandle() override { listener_->stop_accepting(); }
  std::string local_address() const override { return listener_->local_address(); }
  void stop_accepting() override { listener_->stop_accepting(); }

 private:
  std::shared_ptr<Listener> listener_;
};

}  // namespace

Result<std::unique_ptr<Server>> start_server(asio::io_context& ioc,
                                             std::shared_ptr<const ServerContext> context,
                                             int adopted_fd) {
  auto listener = std::make_shared<Listener>(ioc, context);
  Status s = adopted_fd >= 0 ? listener->adopt(adopted_fd)
                             : listener->bind(context->settings()->server_listen);
  if (!s) return s;
  listener->start();
  return std::unique_ptr<Server>(std::make_unique<ServerHandle>(std::move(listener)));
}

}  // namespace ticketaid
