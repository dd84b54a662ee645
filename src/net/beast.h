// The Beast and Asio names the net layer uses. Include only from net/*.cpp.
#pragma once

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <string_view>

namespace ticketaid::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using error_code = beast::error_code;

// Beast's string_view is Boost's; the rest of the code uses the standard one.
inline std::string_view sv(beast::string_view s) {
  return {s.data(), s.size()};
}

}  // namespace ticketaid::net
