#include "limits/auth.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "support/daemon_process.h"
#include "support/jwt_mint.h"
#include "support/manual_clock.h"

namespace ticketaid {
namespace {

using nlohmann::json;
using testing::mint_hs256;
using testing::mint_rs256;

const std::string kSecret = "an HS256 secret of at least 32 bytes, for tests";
constexpr std::int64_t kNowS = 1'800'000'000;

const testing::RsaKeyPair& rsa_keys() {
  static const testing::RsaKeyPair keys = testing::generate_rsa_keypair();
  return keys;
}

// The user of an accepted identity, or the refusal's reason in brackets.
std::string user_of(const Result<Identity>& identity) {
  return identity ? identity->user : "[" + identity.status().message() + "]";
}

class AuthTest : public ::testing::Test {
 protected:
  AuthTest() { clock_.set_unix_ms(kNowS * 1000 + 250); }

  std::string write_file(const std::string& name, const std::string& content) {
    const std::string path = (dir_.path() / name).string();
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  std::shared_ptr<const Authenticator> make() {
    Result<std::shared_ptr<const Authenticator>> auth = make_authenticator(settings_, clock_);
    EXPECT_TRUE(auth) << auth.status().to_string();
    return auth ? *auth : nullptr;
  }
  // The start-up failure's message, after checking that it is one.
  std::string start_failure() {
    Result<std::shared_ptr<const Authenticator>> auth = make_authenticator(settings_, clock_);
    if (auth) return "(started)";
    EXPECT_EQ(auth.status().code(), ErrorCode::bad_request);
    EXPECT_EQ(auth.status().message().find('\n'), std::string::npos);
    return auth.status().message();
  }
  void use_jwt_secret() {
    settings_.auth_mode = "jwt";
    settings_.auth_jwt_secret = kSecret;
  }
  static std::string bearer(const std::string& token) { return "Bearer " + token; }
  static json claims(json extra = json::object()) {
    json payload = {{"sub", "alice"}, {"exp", kNowS + 600}};
    payload.update(extra);
    return payload;
  }

  testing::TempDir dir_;
  testing::ManualClock clock_;
  Settings settings_;
};

TEST_F(AuthTest, NoneModeIsTheClientAddressAndNeverFails) {
  auto auth = make();
  ASSERT_TRUE(auth);
  Result<Identity> identity = auth->authenticate({"Bearer whatever", "x", "a=b", "10.0.0.7"});
  ASSERT_TRUE(identity);
  EXPECT_EQ(identity->user, "10.0.0.7");
  EXPECT_TRUE(identity->anonymous);
  EXPECT_FALSE(identity->admin);
  EXPECT_EQ(identity->role, "");
  EXPECT_TRUE(identity->may_access("someone else"));
  EXPECT_TRUE(auth->authenticate({}));
}

TEST_F(AuthTest, UnknownModeFailsAtStart) {
  settings_.auth_mode = "oauth";
  EXPECT_NE(start_failure().find("auth.mode"), std::string::npos);
}

TEST_F(AuthTest, ApiKeyModeAcceptsAConfiguredKeyAsAnAdminService) {
  settings_.auth_mode = "api_key";
  settings_.auth_api_keys = {"abc", "a-second-key"};
  auto auth = make();
  ASSERT_TRUE(auth);
  Result<Identity> identity = auth->authenticate({.authorization = "Bearer abc"});
  ASSERT_TRUE(identity) << identity.status().to_string();
  EXPECT_EQ(identity->user, "key:ba7816bf8f01");  // SHA-256("abc") = ba7816bf8f01cfea...
  EXPECT_EQ(identity->role, "admin");
  EXPECT_TRUE(identity->admin);
  EXPECT_FALSE(identity->anonymous);
  EXPECT_TRUE(identity->may_access("anyone"));
  EXPECT_TRUE(auth->authenticate({.authorization = "Bearer a-second-key"}));
}

TEST_F(AuthTest, ApiKeyModeRefusesOtherKeysWithoutEchoingThem) {
  settings_.auth_mode = "api_key";
  settings_.auth_api_keys = {"abc"};
  auto auth = make();
  ASSERT_TRUE(auth);
  for (const char* key : {"abd", "ab", "abcd", "ABC", "Bearer abc"}) {
    Result<Identity> identity = auth->authenticate({.authorization = bearer(key)});
    ASSERT_FALSE(identity) << key;
    EXPECT_EQ(identity.status().code(), ErrorCode::unauthorized);
    EXPECT_EQ(identity.status().message(), "invalid API key");
  }
  Result<Identity> none = auth->authenticate({.client_address = "10.0.0.7"});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.status().message(), "missing credentials");
}

TEST_F(AuthTest, ApiKeysFileSkipsCommentsBlankLinesAndWhitespace) {
  settings_.auth_mode = "api_key";
  settings_.auth_api_keys = {"  from-config  "};
  settings_.auth_api_keys_file = write_file(
      "keys", "# helpdesk keys\n\nkey-one\n   key-two\t\r\n  # not-a-key\n#also-not\nkey-three");
  auto auth = make();
  ASSERT_TRUE(auth);
  for (const char* key : {"from-config", "key-one", "key-two", "key-three"}) {
    EXPECT_TRUE(auth->authenticate({.authorization = bearer(key)})) << key;
  }
  for (const char* key : {"# helpdesk keys", "not-a-key", "# not-a-key", "#also-not", "also-not"}) {
    EXPECT_FALSE(auth->authenticate({.authorization = bearer(key)})) << key;
  }
}

TEST_F(AuthTest, ApiKeyModeFailsAtStartWithoutKeys) {
  settings_.auth_mode = "api_key";
  EXPECT_NE(start_failure().find("auth.api_keys"), std::string::npos);
  settings_.auth_api_keys = {"", "   "};
  settings_.auth_api_keys_file = write_file("empty", "# nothing here\n\n");
  EXPECT_NE(start_failure().find("auth.api_keys_file"), std::string::npos);
  settings_.auth_api_keys_file = (dir_.path() / "absent").string();
  const std::string message = start_failure();
  EXPECT_NE(message.find("auth.api_keys_file"), std::string::npos);
  EXPECT_NE(message.find("absent"), std::string::npos);
}

TEST_F(AuthTest, JwtModeWithASecretIsTheSubjectAndRole) {
  use_jwt_secret();
  auto auth = make();
  ASSERT_TRUE(auth);
  Result<Identity> agent = auth->authenticate(
      {.authorization = bearer(mint_hs256(claims({{"role", "agent"}}), kSecret))});
  ASSERT_TRUE(agent) << agent.status().to_string();
  EXPECT_EQ(agent->user, "alice");
  EXPECT_EQ(agent->role, "agent");
  EXPECT_FALSE(agent->admin);
  EXPECT_FALSE(agent->anonymous);
  EXPECT_TRUE(agent->may_access("alice"));
  EXPECT_FALSE(agent->may_access("bob"));

  Result<Identity> admin = auth->authenticate(
      {.authorization = bearer(mint_hs256(claims({{"role", "admin"}}), kSecret))});
  ASSERT_TRUE(admin);
  EXPECT_TRUE(admin->admin);
  EXPECT_TRUE(admin->may_access("bob"));
}

TEST_F(AuthTest, JwtModeUsesTheConfiguredRoleClaimAndAdminRole) {
  use_jwt_secret();
  settings_.auth_jwt_role_claim = "desk_role";
  settings_.auth_admin_role = "supervisor";
  auto auth = make();
  ASSERT_TRUE(auth);
  const std::string token =
      mint_hs256(claims({{"role", "admin"}, {"desk_role", "supervisor"}}), kSecret);
  Result<Identity> identity = auth->authenticate({.authorization = bearer(token)});
  ASSERT_TRUE(identity);
  EXPECT_EQ(identity->role, "supervisor");
  EXPECT_TRUE(identity->admin);
  // No role at all is never the admin role, even when that is configured empty.
  settings_.auth_admin_role = "";
  auto no_admin = make();
  ASSERT_TRUE(no_admin);
  Result<Identity> plain =
      no_admin->authenticate({.authorization = bearer(mint_hs256(claims(), kSecret))});
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->admin);
}

TEST_F(AuthTest, JwtModeChecksTimeWithTheClockAndTheConfiguredLeeway) {
  use_jwt_secret();
  settings_.auth_jwt_leeway_s = 10;
  auto auth = make();
  ASSERT_TRUE(auth);
  const std::string authorization = bearer(mint_hs256(claims(), kSecret));
  const Credentials credentials{.authorization = authorization};
  // The token expires at kNowS + 600, accepted until kNowS + 610 (exclusive).
  EXPECT_TRUE(auth->authenticate(credentials));
  clock_.set_unix_ms((kNowS + 609) * 1000 + 999);
  EXPECT_TRUE(auth->authenticate(credentials));
  clock_.advance(std::chrono::milliseconds(1));
  Result<Identity> expired = auth->authenticate(credentials);
  ASSERT_FALSE(expired);
  EXPECT_EQ(expired.status().code(), ErrorCode::unauthorized);
  EXPECT_EQ(expired.status().message(), "the token has expired");
}

TEST_F(AuthTest, JwtModeChecksIssuerAndAudienceFromTheSettings) {
  use_jwt_secret();
  settings_.auth_jwt_issuer = "https://idp.example";
  settings_.auth_jwt_audience = "ticketaid";
  auto auth = make();
  ASSERT_TRUE(auth);
  auto with = [&](json extra) {
    return auth->authenticate({.authorization = bearer(mint_hs256(claims(extra), kSecret))});
  };
  EXPECT_TRUE(with({{"iss", "https://idp.example"}, {"aud", {"mail", "ticketaid"}}}));
  EXPECT_EQ(with({{"iss", "https://idp.example"}}).status().message(), "wrong token audience");
  EXPECT_EQ(with({{"aud", "ticketaid"}}).status().message(), "wrong token issuer");
}

TEST_F(AuthTest, JwtSecretFileIsTrimmedOfItsTrailingNewline) {
  settings_.auth_mode = "jwt";
  settings_.auth_jwt_secret_file = write_file("secret", kSecret + "\n");
  auto auth = make();
  ASSERT_TRUE(auth);
  EXPECT_TRUE(auth->authenticate({.authorization = bearer(mint_hs256(claims(), kSecret))}));
  EXPECT_FALSE(auth->authenticate({.authorization = bearer(mint_hs256(claims(), kSecret + "\n"))}));
}

TEST_F(AuthTest, JwtPublicKeyFileMeansRs256Only) {
  settings_.auth_mode = "jwt";
  settings_.auth_jwt_public_key_file = write_file("key.pem", rsa_keys().public_pem);
  settings_.auth_jwt_secret = kSecret;  // ignored: the public key wins
  auto auth = make();
  ASSERT_TRUE(auth);
  EXPECT_TRUE(
      auth->authenticate({.authorization = bearer(mint_rs256(claims(), rsa_keys().private_pem))}));
  Result<Identity> hs =
      auth->authenticate({.authorization = bearer(mint_hs256(claims(), kSecret))});
  ASSERT_FALSE(hs);
  EXPECT_EQ(hs.status().message(), "unsupported token algorithm");
}

TEST_F(AuthTest, JwtModeFailsAtStartWithoutAUsableKey) {
  settings_.auth_mode = "jwt";
  std::string message = start_failure();
  EXPECT_NE(message.find("auth.jwt.secret"), std::string::npos);
  EXPECT_NE(message.find("auth.jwt.public_key_file"), std::string::npos);

  settings_.auth_jwt_secret = "only-31-bytes-long-secret-12345";
  ASSERT_EQ(settings_.auth_jwt_secret.size(), 31u);
  message = start_failure();
  EXPECT_NE(message.find("32 bytes"), std::string::npos);
  EXPECT_EQ(message.find(settings_.auth_jwt_secret), std::string::npos);
  settings_.auth_jwt_secret = std::string(32, 's');
  EXPECT_EQ(start_failure(), "(started)");

  settings_.auth_jwt_secret.clear();
  settings_.auth_jwt_secret_file = write_file("short", "short-secret\n");
  message = start_failure();
  EXPECT_NE(message.find("auth.jwt.secret_file"), std::string::npos);
  EXPECT_EQ(message.find("short-secret"), std::string::npos);
  settings_.auth_jwt_secret_file = (dir_.path() / "absent").string();
  EXPECT_NE(start_failure().find("absent"), std::string::npos);
  settings_.auth_jwt_secret_file = write_file("long", kSecret);
  settings_.auth_jwt_secret = kSecret;
  EXPECT_NE(start_failure().find("both"), std::string::npos);
}

TEST_F(AuthTest, JwtModeFailsAtStartOnABadPublicKeyFile) {
  settings_.auth_mode = "jwt";
  settings_.auth_jwt_public_key_file = write_file("private.pem", rsa_keys().private_pem);
  std::string message = start_failure();
  EXPECT_NE(message.find("auth.jwt.public_key_file"), std::string::npos);
  EXPECT_EQ(message.find("PRIVATE"), std::string::npos);
  settings_.auth_jwt_public_key_file = write_file("garbage.pem", "not a key\n");
  EXPECT_NE(start_failure().find("garbage.pem"), std::string::npos);
  settings_.auth_jwt_public_key_file = (dir_.path() / "absent.pem").string();
  EXPECT_NE(start_failure().find("absent.pem"), std::string::npos);
}

TEST_F(AuthTest, TokenSourcesInOrderBearerThenQueryThenCookie) {
  use_jwt_secret();
  auto auth = make();
  ASSERT_TRUE(auth);
  const std::string alice = mint_hs256(claims({{"sub", "alice"}}), kSecret);
  const std::string bob = mint_hs256(claims({{"sub", "bob"}}), kSecret);
  const std::string carol = mint_hs256(claims({{"sub", "carol"}}), kSecret);
  const std::string cookie = "theme=dark; ticketaid_token=" + carol;

  EXPECT_EQ(user_of(auth->authenticate({bearer(alice), bob, cookie, ""})), "alice");
  EXPECT_EQ(user_of(auth->authenticate({"", bob, cookie, ""})), "bob");
  EXPECT_EQ(user_of(auth->authenticate({"", "", cookie, ""})), "carol");
  // The first present source decides, even when it fails and a later one would pass.
  EXPECT_FALSE(auth->authenticate({bearer("junk"), bob, cookie, ""}));
  EXPECT_FALSE(auth->authenticate({"", "junk", cookie, ""}));
  // The scheme is case-insensitive; another scheme (a proxy's Basic) is not a token.
  EXPECT_EQ(user_of(auth->authenticate({"bearer " + alice, "", "", ""})), "alice");
  EXPECT_EQ(user_of(auth->authenticate({"BEARER \t " + alice + " ", "", "", ""})), "alice");
  EXPECT_EQ(user_of(auth->authenticate({"Basic dXNlcjpwYXNz", "", cookie, ""})), "carol");
  EXPECT_EQ(auth->authenticate({"Bearer", "", cookie, ""}).status().message(),
            "malformed authorization header");
  EXPECT_EQ(auth->authenticate({"Bearer   ", "", cookie, ""}).status().message(),
            "malformed authorization header");
  EXPECT_EQ(auth->authenticate({"Bearer" + alice, "", "", ""}).status().message(),
            "missing credentials");
  EXPECT_EQ(auth->authenticate({"Basic dXNlcjpwYXNz", "", "theme=dark", ""}).status().message(),
            "missing credentials");
  // The cookie's name is a setting.
  settings_.auth_cookie_name = "desk_jwt";
  auto renamed = make();
  ASSERT_TRUE(renamed);
  EXPECT_FALSE(renamed->authenticate({"", "", cookie, ""}));
  EXPECT_EQ(user_of(renamed->authenticate({"", "", "desk_jwt=" + bob, ""})), "bob");
}

TEST_F(AuthTest, RefusalsNeverHoldTheToken) {
  use_jwt_secret();
  auto auth = make();
  ASSERT_TRUE(auth);
  const std::string token = mint_hs256(claims({{"exp", kNowS - 3600}}), kSecret);
  Result<Identity> identity = auth->authenticate({.authorization = bearer(token)});
  ASSERT_FALSE(identity);
  EXPECT_EQ(identity.status().to_string().find(token.substr(0, 20)), std::string::npos);
  EXPECT_EQ(identity.status().to_string().find(kSecret), std::string::npos);
}

TEST(AuthCookieValueTest, FindsTheNamedCookie) {
  EXPECT_EQ(cookie_value("a=b; c=d", "a"), "b");
  EXPECT_EQ(cookie_value("a=b; c=d", "c"), "d");
  EXPECT_EQ(cookie_value("a=b;c=d", "c"), "d");
  EXPECT_EQ(cookie_value("  a = b  ;  c = d  ", "c"), "d");
  EXPECT_EQ(cookie_value("a=b; c=d;", "c"), "d");
  EXPECT_EQ(cookie_value("t=x.y.z", "t"), "x.y.z");
  EXPECT_EQ(cookie_value("t=ab=c==", "t"), "ab=c==");  // values may hold '='
  EXPECT_EQ(cookie_value("t=\"quoted\"", "t"), "quoted");
  EXPECT_EQ(cookie_value("t=\"", "t"), "\"");
  EXPECT_EQ(cookie_value("t=1; t=2", "t"), "1");  // the first one, as browsers send it
}

TEST(AuthCookieValueTest, EmptyWhenAbsent) {
  EXPECT_EQ(cookie_value("", "t"), "");
  EXPECT_EQ(cookie_value("a=b", "t"), "");
  EXPECT_EQ(cookie_value("t", "t"), "");
  EXPECT_EQ(cookie_value("t=", "t"), "");
  EXPECT_EQ(cookie_value(";;;", "t"), "");
  EXPECT_EQ(cookie_value("tt=1; xt=2; T=3", "t"), "");  // names match whole and by case
  EXPECT_EQ(cookie_value("ticketaid_token_old=1", "ticketaid_token"), "");
  EXPECT_EQ(cookie_value("=x", ""), "");
  EXPECT_EQ(cookie_value("a=b", ""), "");
  EXPECT_EQ(cookie_value("junk; t=v", "t"), "v");
}

}  // namespace
}  // namespace ticketaid
