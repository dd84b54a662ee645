// Authentication and ownership on the real daemon (SPEC §4): api_key and jwt modes
// over REST and WebSocket, each token source, every way a token can be wrong, and
// chat sessions that belong to their user. Tokens are minted by tests/support's
// jwt_mint, which shares no code with the daemon's verifier.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <string>

#include "integration/daemon_fixture.h"
#include "integration/rest_client.h"
#include "support/jwt_mint.h"

namespace ticketaid::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kSecret = "0123456789abcdef0123456789abcdef-test-secret";

int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

json claims(const std::string& user, std::string role = "technician") {
  return {{"sub", user},
          {"role", std::move(role)},
          {"iss", "https://idp.example"},
          {"aud", "ticketaid"},
          {"exp", now_s() + 600}};
}

class Auth : public DaemonTest {
 protected:
  void start_jwt(std::map<std::string, std::string> env = {}) {
    env.emplace("TICKETAID_AUTH_MODE", "jwt");
    env.emplace("TICKETAID_AUTH_JWT_SECRET", kSecret);
    env.emplace("TICKETAID_AUTH_JWT_ISSUER", "https://idp.example");
    env.emplace("TICKETAID_AUTH_JWT_AUDIENCE", "ticketaid");
    start_daemon({}, std::move(env));
  }

  HttpResult call(const std::string& method, const std::string& path, const std::string& token,
                  const json& body = nullptr) {
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    return http_call(daemon_->port(), method, path, body.is_null() ? "" : body.dump(),
                     std::move(headers));
  }

  // The close code of a WebSocket opened with these headers; 0 when it stayed open.
  int ws_close_code(const std::string& target, const std::map<std::string, std::string>& headers) {
    WsClient client;
    auto result = client.connect(daemon_->port(), target, headers);
    if (!result.upgraded) return -result.http_status;
    if (!client.send_json({{"type", "ping"}})) return client.close_code().value_or(-1);
    auto pong = client.read_json(5s);
    if (pong && pong->value("type", "") == "pong") return 0;
    return client.close_code().value_or(-1);
  }

  std::string create_session(const std::string& token, const std::string& user) {
    auto created = call("POST", "/api/sessions", token, {{"userId", user}});
    EXPECT_EQ(created.status, 201) << created.describe();
    return created.json.value("id", "");
  }
};

TEST_F(Auth, JwtModeRefusesMissingCredentialsWith401And4002) {
  start_jwt();
  auto missing = call("GET", "/api/tickets", "");
  EXPECT_EQ(missing.status, 401) << missing.describe();
  EXPECT_EQ(missing.error_code(), "unauthorized");
  EXPECT_EQ(ws_close_code("/api/websocket/chat/T-1", {}), 4002);
  // Health, readiness and metrics stay open for probes.
  EXPECT_EQ(call("GET", "/health", "").status, 200);
  EXPECT_EQ(call("GET", "/metrics", "").status, 200);
}

TEST_F(Auth, AValidTokenIsAcceptedFromTheHeaderTheQueryAndTheCookie) {
  start_jwt();
  const std::string token = mint_hs256(claims("alice"), kSecret);
  EXPECT_EQ(call("GET", "/api/tickets", token).status, 200);
  EXPECT_EQ(ws_close_code("/api/websocket/chat/T-1", {{"Authorization", "Bearer " + token}}), 0);
  EXPECT_EQ(ws_close_code("/api/websocket/chat/T-1?token=" + token, {}), 0);
  EXPECT_EQ(ws_close_code("/api/websocket/chat/T-1",
                          {{"Cookie", "theme=dark; ticketaid_token=" + token}}),
            0);
  auto cookie = http_call(daemon_->port(), "GET", "/api/tickets", "",
                          {{"Cookie", "ticketaid_token=" + token}});
  EXPECT_EQ(cookie.status, 200) << cookie.describe();
}

TEST_F(Auth, EveryWrongTokenIsRefusedOverRestAndWebsocket) {
  const RsaKeyPair rsa = generate_rsa_keypair();
  start_jwt();
  json expired = claims("alice");
  expired["exp"] = now_s() - 3600;
  json not_yet = claims("alice");
  not_yet["nbf"] = now_s() + 3600;
  json wrong_aud = claims("alice");
  wrong_aud["aud"] = "another-service";
  json wrong_iss = claims("alice");
  wrong_iss["iss"] = "https://evil.example";
  std::string bad_signature = mint_hs256(claims("alice"), kSecret);
  bad_signature.back() = bad_signature.back() == 'A' ? 'B' : 'A';
  const std::map<std::string, std::string> wrong = {
      {"expired", mint_hs256(expired, kSecret)},
      {"not yet valid", mint_hs256(not_yet, kSecret)},
      {"wrong audience", mint_hs256(wrong_aud, kSecret)},
      {"wrong issuer", mint_hs256(wrong_iss, kSecret)},
      {"bad signature", bad_signature},
      {"other secret", mint_hs256(claims("alice"), "another-secret-another-secret-12345")},
      {"alg none", mint_unsigned(claims("alice"))},
      {"RS256 when HS256 is configured", mint_rs256(claims("alice"), rsa.private_pem)},
      {"garbage", "not.a.token"},
      {"empty parts", ".."},
  };
  for (const auto& [what, token] : wrong) {
    auto rest = call("GET", "/api/tickets", token);
    EXPECT_EQ(rest.status, 401) << what << ": " << rest.describe();
    EXPECT_EQ(rest.body.find(token), std::string::npos) << what << ": the token was echoed";
    EXPECT_EQ(ws_close_code("/api/websocket/chat/T-1", {{"Authorization", "Bearer " + token}}),
              4002)
        << what;
  }
  EXPECT_EQ(daemon_->stderr_text().find(mint_hs256(expired, kSecret)), std::string::npos)
      << "a token reached the log";
}

TEST_F(Auth, Rs256ModeRefusesTheHmacConfusionAttack) {
  const RsaKeyPair rsa = generate_rsa_keypair();
  const auto key_file = dir_.path() / "jwt.pub";
  std::ofstream(key_file) << rsa.public_pem;
  start_daemon({}, {{"TICKETAID_AUTH_MODE", "jwt"},
                    {"TICKETAID_AUTH_JWT_PUBLIC_KEY_FILE", key_file.string()}});
  EXPECT_EQ(call("GET", "/api/tickets", mint_rs256(claims("alice"), rsa.private_pem)).status, 200);
  // HS256 signed with the public key's text: accepted by a verifier that lets the
  // token pick its algorithm.
  const std::string confused =
      mint_with_header({{"alg", "HS256"}, {"typ", "JWT"}}, claims("alice"), rsa.public_pem);
  EXPECT_EQ(call("GET", "/api/tickets", confused).status, 401);
  const std::string relabelled =
      mint_with_header({{"alg", "RS256"}, {"typ", "JWT"}}, claims("alice"), rsa.public_pem);
  EXPECT_EQ(call("GET", "/api/tickets", relabelled).status, 401);
}

TEST_F(Auth, ChatSessionsBelongToTheirUser) {
  start_jwt();
  const std::string alice = mint_hs256(claims("alice"), kSecret);
  const std::string bob = mint_hs256(claims("bob"), kSecret);
  const std::string admin = mint_hs256(claims("carol", "admin"), kSecret);
  const std::string id = create_session(alice, "alice");
  ASSERT_FALSE(id.empty());

  EXPECT_EQ(call("GET", "/api/sessions/" + id, alice).status, 200);
  EXPECT_EQ(call("GET", "/api/sessions/" + id, bob).status, 403);
  EXPECT_EQ(call("GET", "/api/sessions/" + id, admin).status, 200);
  EXPECT_EQ(call("GET", "/api/sessions/" + id + "/messages", bob).status, 403);
  EXPECT_EQ(
      call("POST", "/api/sessions/" + id + "/messages", bob, {{"role", "user"}, {"content", "hi"}})
          .status,
      403);
  EXPECT_EQ(call("POST", "/api/chat/session", bob, {{"sessionId", id}, {"message", "hi"}}).status,
            403);
  EXPECT_EQ(call("GET", "/api/users/alice/sessions", bob).status, 403);
  EXPECT_EQ(call("GET", "/api/users/alice/sessions", alice).status, 200);
  EXPECT_EQ(call("POST", "/api/sessions", bob, {{"userId", "alice"}}).status, 403);
  EXPECT_EQ(call("DELETE", "/api/sessions/" + id, bob).status, 403);

  EXPECT_EQ(ws_close_code("/ws/sessions/" + id, {{"Authorization", "Bearer " + bob}}), 4003);
  EXPECT_EQ(ws_close_code("/ws/sessions/" + id, {{"Authorization", "Bearer " + alice}}), 0);
  EXPECT_EQ(ws_close_code("/ws/sessions/" + id, {{"Authorization", "Bearer " + admin}}), 0);

  // Nothing bob tried changed alice's session.
  auto still = call("GET", "/api/sessions/" + id, alice);
  EXPECT_EQ(still.status, 200);
  EXPECT_EQ(still.json.value("messageCount", -1), 0);
  EXPECT_EQ(call("DELETE", "/api/sessions/" + id, alice).status, 204);
}

TEST_F(Auth, ApiKeyModeAcceptsOnlyConfiguredKeys) {
  const auto keys = dir_.path() / "keys";
  std::ofstream(keys) << "# the helpdesk backend\nfile-key-0123456789\n";
  start_daemon({}, {{"TICKETAID_AUTH_MODE", "api_key"},
                    {"TICKETAID_AUTH_API_KEYS", "env-key-0123456789"},
                    {"TICKETAID_AUTH_API_KEYS_FILE", keys.string()}});
  EXPECT_EQ(call("GET", "/api/tickets", "env-key-0123456789").status, 200);
  EXPECT_EQ(call("GET", "/api/tickets", "file-key-0123456789").status, 200);
  EXPECT_EQ(call("GET", "/api/tickets", "wrong-key").status, 401);
  EXPECT_EQ(call("GET", "/api/tickets", "").status, 401);
  EXPECT_EQ(ws_close_code("/api/websocket/chat/T-1", {{"Authorization", "Bearer wrong"}}), 4002);
  EXPECT_EQ(
      ws_close_code("/api/websocket/chat/T-1", {{"Authorization", "Bearer env-key-0123456789"}}),
      0);
  EXPECT_EQ(daemon_->stderr_text().find("env-key-0123456789"), std::string::npos);
}

TEST_F(Auth, AMisconfiguredModeStopsTheStartWithOneLine) {
  DaemonOptions options;
  options.db_path = db_path();
  options.ollama_url = fake_.url();
  options.env = {{"TICKETAID_AUTH_MODE", "jwt"}, {"TICKETAID_AUTH_JWT_SECRET", "tiny-secret"}};
  DaemonProcess daemon(options);
  EXPECT_FALSE(daemon.start());
  EXPECT_NE(daemon.stderr_text().find("auth.jwt"), std::string::npos) << daemon.stderr_text();
  EXPECT_EQ(daemon.stderr_text().find("tiny-secret"), std::string::npos) << "the secret was logged";
}

}  // namespace
}  // namespace ticketaid::testing
