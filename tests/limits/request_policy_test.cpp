// The request policy: which address is the client, which Host names this daemon, and
// which browser Origins may call it.
#include "limits/request_policy.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ticketaid {
namespace {

const std::vector<std::string> kProxies = {"127.0.0.1", "10.0.0.0/8"};

TEST(ClientAddress, IsThePeerUnlessThePeerIsATrustedProxy) {
  EXPECT_EQ(client_address("192.0.2.7", "203.0.113.9", {}), "192.0.2.7");
  EXPECT_EQ(client_address("192.0.2.7", "203.0.113.9", kProxies), "192.0.2.7");
  EXPECT_EQ(client_address("127.0.0.1", "", kProxies), "127.0.0.1");
}

TEST(ClientAddress, IsTheRightmostUntrustedEntry) {
  EXPECT_EQ(client_address("127.0.0.1", "203.0.113.9", kProxies), "203.0.113.9");
  // A client's own (forged) entry stays on the left of what the proxies wrote.
  EXPECT_EQ(client_address("127.0.0.1", "198.51.100.1, 203.0.113.9, 10.1.2.3", kProxies),
            "203.0.113.9");
  EXPECT_EQ(client_address("127.0.0.1", " [2001:db8::1] ", kProxies), "2001:db8::1");
  // Every entry trusted: the leftmost.
  EXPECT_EQ(client_address("127.0.0.1", "10.0.0.5, 10.0.0.6", kProxies), "10.0.0.5");
}

TEST(ClientAddress, AMalformedEntryWrittenByAProxyFallsBackToThePeer) {
  EXPECT_EQ(client_address("127.0.0.1", "unknown", kProxies), "127.0.0.1");
  EXPECT_EQ(client_address("127.0.0.1", "203.0.113.9:4711", kProxies), "127.0.0.1");
}

TEST(ClientAddress, AnOversizedHeaderIsReadFromItsRightEnd) {
  std::string padding;
  while (padding.size() < 10000) {
    padding += "198.51.100.1, ";
  }
  EXPECT_EQ(client_address("127.0.0.1", padding + "203.0.113.9", kProxies), "203.0.113.9");
}

TEST(HostAllowed, AddressesLocalhostAndListedNamesOnly) {
  const std::vector<std::string> hosts = {"desk-ai.example"};
  const std::vector<std::string> origins = {"https://desk.example", "http://[::1]:9000"};
  EXPECT_TRUE(host_allowed("", {}, {}));
  EXPECT_TRUE(host_allowed("127.0.0.1:8080", {}, {}));
  EXPECT_TRUE(host_allowed("192.0.2.7", {}, {}));
  EXPECT_TRUE(host_allowed("[::1]:8080", {}, {}));
  EXPECT_TRUE(host_allowed("localhost:8080", {}, {}));
  EXPECT_TRUE(host_allowed("LocalHost", {}, {}));
  EXPECT_TRUE(host_allowed("desk-ai.example:443", hosts, {}));
  EXPECT_TRUE(host_allowed("DESK-AI.example", hosts, {}));
  EXPECT_TRUE(host_allowed("desk.example", {}, origins));  // the host of an allowed origin
  // A name that could have been re-pointed at this machine by its owner's DNS.
  EXPECT_FALSE(host_allowed("evil.example:8080", hosts, origins));
  EXPECT_FALSE(host_allowed("desk-ai.example.evil", hosts, origins));
  EXPECT_FALSE(host_allowed("localhost.evil", {}, {}));
  EXPECT_FALSE(host_allowed("127.0.0.1.nip.io", {}, {}));
}

TEST(OriginAllowed, NoOriginTheOwnOneOrAListedOne) {
  const std::vector<std::string> allowed = {"https://desk.example"};
  EXPECT_TRUE(origin_allowed("", "127.0.0.1:8080", {}));
  EXPECT_TRUE(origin_allowed("http://127.0.0.1:8080", "127.0.0.1:8080", {}));
  EXPECT_TRUE(origin_allowed("https://DESK.example/", "127.0.0.1:8080", allowed));
  EXPECT_FALSE(origin_allowed("http://127.0.0.1:9999", "127.0.0.1:8080", {}));
  EXPECT_FALSE(origin_allowed("https://desk.example.evil", "127.0.0.1:8080", allowed));
  EXPECT_FALSE(origin_allowed("null", "127.0.0.1:8080", {}));
  EXPECT_FALSE(origin_allowed("ftp://127.0.0.1:8080", "127.0.0.1:8080", {}));
}

}  // namespace
}  // namespace ticketaid
