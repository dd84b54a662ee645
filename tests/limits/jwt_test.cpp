#include "limits/jwt.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/jwt_mint.h"

namespace ticketaid {
namespace {

using nlohmann::json;
using testing::base64url;
using testing::mint_hs256;
using testing::mint_rs256;
using testing::mint_unsigned;
using testing::mint_with_header;

constexpr std::int64_t kNow = 1'800'000'000;
const std::string kSecret = "0123456789abcdef0123456789abcdef-test-secret";

json claims(json extra = json::object()) {
  json payload = {{"sub", "alice"}, {"exp", kNow + 3600}, {"iat", kNow}};
  payload.update(extra);
  return payload;
}

const testing::RsaKeyPair& rsa_keys() {
  static const testing::RsaKeyPair keys = testing::generate_rsa_keypair();
  return keys;
}

std::string pem_of(EVP_PKEY* key) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  EXPECT_EQ(PEM_write_bio_PUBKEY(bio.get(), key), 1);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(size));
}

class JwtTest : public ::testing::Test {
 protected:
  // The reason of a refused token; "" when it was accepted.
  std::string refusal(const JwtVerifier& verifier, std::string_view token) {
    Result<JwtClaims> result = verifier.verify(token, kNow, policy_, "role");
    if (result) return "";
    EXPECT_EQ(result.status().code(), ErrorCode::unauthorized);
    if (!token.empty()) {
      EXPECT_EQ(result.status().message().find(token), std::string::npos);
    }
    return result.status().message();
  }
  std::string hs_refusal(const json& payload) {
    return refusal(*hs256_, mint_hs256(payload, kSecret));
  }

  JwtPolicy policy_;
  std::unique_ptr<JwtVerifier> hs256_ = make_hs256_verifier(kSecret);
};

TEST_F(JwtTest, AcceptsAValidHs256Token) {
  Result<JwtClaims> result =
      hs256_->verify(mint_hs256(claims({{"role", "agent"}}), kSecret), kNow, policy_, "role");
  ASSERT_TRUE(result) << result.status().to_string();
  EXPECT_EQ(result->subject, "alice");
  EXPECT_EQ(result->role, "agent");
}

TEST_F(JwtTest, ReadsTheConfiguredRoleClaimOnlyWhenItIsAString) {
  const std::string token = mint_hs256(claims({{"role", "agent"}, {"grp", "admin"}}), kSecret);
  EXPECT_EQ(hs256_->verify(token, kNow, policy_, "grp")->role, "admin");
  EXPECT_EQ(hs256_->verify(token, kNow, policy_, "missing")->role, "");
  EXPECT_EQ(hs256_->verify(token, kNow, policy_, "")->role, "");
  const std::string array_role = mint_hs256(claims({{"role", json::array({"admin"})}}), kSecret);
  EXPECT_EQ(hs256_->verify(array_role, kNow, policy_, "role")->role, "");
}

TEST_F(JwtTest, AcceptsAValidRs256Token) {
  Result<std::unique_ptr<JwtVerifier>> rs256 = make_rs256_verifier(rsa_keys().public_pem);
  ASSERT_TRUE(rs256) << rs256.status().to_string();
  Result<JwtClaims> result =
      (*rs256)->verify(mint_rs256(claims(), rsa_keys().private_pem), kNow, policy_, "role");
  ASSERT_TRUE(result) << result.status().to_string();
  EXPECT_EQ(result->subject, "alice");
  EXPECT_EQ(result->role, "");
}

TEST_F(JwtTest, Rs256RefusesATokenSignedByAnotherKey) {
  const testing::RsaKeyPair other = testing::generate_rsa_keypair();
  auto rs256 = make_rs256_verifier(rsa_keys().public_pem);
  ASSERT_TRUE(rs256);
  EXPECT_EQ(refusal(**rs256, mint_rs256(claims(), other.private_pem)), "bad token signature");
}

TEST_F(JwtTest, Rs256RefusesKeysThatAreNotRsaPublicKeys) {
  EXPECT_FALSE(make_rs256_verifier(""));
  EXPECT_FALSE(make_rs256_verifier("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"));
  EXPECT_FALSE(make_rs256_verifier(rsa_keys().private_pem));  // not a public key

  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> ec(EVP_EC_gen("P-256"), &EVP_PKEY_free);
  ASSERT_NE(ec, nullptr);
  Result<std::unique_ptr<JwtVerifier>> from_ec = make_rs256_verifier(pem_of(ec.get()));
  ASSERT_FALSE(from_ec);
  EXPECT_EQ(from_ec.status().code(), ErrorCode::bad_request);
  EXPECT_NE(from_ec.status().message().find("RSA"), std::string::npos);

  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> small(EVP_RSA_gen(1024), &EVP_PKEY_free);
  ASSERT_NE(small, nullptr);
  Result<std::unique_ptr<JwtVerifier>> from_small = make_rs256_verifier(pem_of(small.get()));
  ASSERT_FALSE(from_small);
  EXPECT_NE(from_small.status().message().find("2048"), std::string::npos);
}

TEST_F(JwtTest, ExpiryIsCheckedWithTheLeewayOnBothSidesOfTheEdge) {
  policy_.leeway_s = 60;
  EXPECT_EQ(hs_refusal(claims({{"exp", kNow - 60}})), "the token has expired");
  EXPECT_EQ(hs_refusal(claims({{"exp", kNow - 59}})), "");
  EXPECT_EQ(hs_refusal(claims({{"exp", kNow - 100000}})), "the token has expired");
  policy_.leeway_s = 0;
  EXPECT_EQ(hs_refusal(claims({{"exp", kNow}})), "the token has expired");
  EXPECT_EQ(hs_refusal(claims({{"exp", kNow + 1}})), "");
  EXPECT_EQ(hs_refusal(claims({{"exp", kNow + 0.5}})), "");  // NumericDate may be fractional
}

TEST_F(JwtTest, NotBeforeIsCheckedWithTheLeewayOnBothSidesOfTheEdge) {
  policy_.leeway_s = 60;
  EXPECT_EQ(hs_refusal(claims({{"nbf", kNow + 60}})), "");
  EXPECT_EQ(hs_refusal(claims({{"nbf", kNow + 61}})), "the token is not valid yet");
  policy_.leeway_s = 0;
  EXPECT_EQ(hs_refusal(claims({{"nbf", kNow}})), "");
  EXPECT_EQ(hs_refusal(claims({{"nbf", kNow + 1}})), "the token is not valid yet");
  EXPECT_EQ(hs_refusal(claims({{"nbf", "soon"}})), "malformed token");
}

TEST_F(JwtTest, AudienceMustBeOrContainTheConfiguredOne) {
  policy_.audience = "helpdesk";
  EXPECT_EQ(hs_refusal(claims({{"aud", "helpdesk"}})), "");
  EXPECT_EQ(hs_refusal(claims({{"aud", json::array({"other", "helpdesk"})}})), "");
  EXPECT_EQ(hs_refusal(claims({{"aud", "other"}})), "wrong token audience");
  EXPECT_EQ(hs_refusal(claims({{"aud", "helpdesk2"}})), "wrong token audience");
  EXPECT_EQ(hs_refusal(claims({{"aud", json::array({"other", "mail"})}})), "wrong token audience");
  EXPECT_EQ(hs_refusal(claims({{"aud", json::array()}})), "wrong token audience");
  EXPECT_EQ(hs_refusal(claims({{"aud", json::array({json::array({"helpdesk"})})}})),
            "wrong token audience");
  EXPECT_EQ(hs_refusal(claims({{"aud", 7}})), "wrong token audience");
  EXPECT_EQ(hs_refusal(claims()), "wrong token audience");
  policy_.audience.clear();
  EXPECT_EQ(hs_refusal(claims({{"aud", "anything"}})), "");
}

TEST_F(JwtTest, IssuerMustMatchWhenConfigured) {
  policy_.issuer = "https://idp.example";
  EXPECT_EQ(hs_refusal(claims({{"iss", "https://idp.example"}})), "");
  EXPECT_EQ(hs_refusal(claims({{"iss", "https://evil.example"}})), "wrong token issuer");
  EXPECT_EQ(hs_refusal(claims({{"iss", json::array({"https://idp.example"})}})),
            "wrong token issuer");
  EXPECT_EQ(hs_refusal(claims()), "wrong token issuer");
  policy_.issuer.clear();
  EXPECT_EQ(hs_refusal(claims({{"iss", "https://evil.example"}})), "");
}

TEST_F(JwtTest, RefusesAFlippedCharacterOrAnotherSecret) {
  std::string token = mint_hs256(claims(), kSecret);
  const std::size_t sig = token.rfind('.') + 1;
  token[sig + 3] = token[sig + 3] == 'A' ? 'B' : 'A';
  EXPECT_EQ(refusal(*hs256_, token), "bad token signature");

  // The payload changed under the original signature.
  const std::string good = mint_hs256(claims(), kSecret);
  const std::string header = good.substr(0, good.find('.'));
  const std::string forged =
      header + "." + base64url(claims({{"role", "admin"}}).dump()) + good.substr(good.rfind('.'));
  EXPECT_EQ(refusal(*hs256_, forged), "bad token signature");

  EXPECT_EQ(refusal(*hs256_, mint_hs256(claims(), kSecret + "x")), "bad token signature");
  // The right MAC with a byte more, or truncated (still valid base64url).
  std::string mac;
  ASSERT_TRUE(base64url_decode(good.substr(good.rfind('.') + 1), mac));
  const std::string signing_input = good.substr(0, good.rfind('.') + 1);
  EXPECT_EQ(refusal(*hs256_, signing_input + base64url(mac + "!")), "bad token signature");
  mac.pop_back();
  EXPECT_EQ(refusal(*hs256_, signing_input + base64url(mac)), "bad token signature");
}

TEST_F(JwtTest, RefusesAlgNoneWithOrWithoutASignature) {
  auto rs256 = make_rs256_verifier(rsa_keys().public_pem);
  ASSERT_TRUE(rs256);
  const std::string unsigned_token = mint_unsigned(claims());
  ASSERT_EQ(unsigned_token.back(), '.');
  for (const JwtVerifier* verifier : {hs256_.get(), rs256->get()}) {
    EXPECT_EQ(refusal(*verifier, unsigned_token), "unsupported token algorithm");
    EXPECT_EQ(refusal(*verifier, unsigned_token.substr(0, unsigned_token.size() - 1)),
              "malformed token");
    for (const char* alg : {"none", "None", "NONE", "nOnE", ""}) {
      EXPECT_EQ(refusal(*verifier, mint_with_header({{"alg", alg}}, claims(), kSecret)),
                "unsupported token algorithm")
          << alg;
    }
  }
  // Other spellings of the right algorithm are other algorithms.
  for (const char* alg : {"hs256", "HS256 ", "HS384", "HS512"}) {
    EXPECT_EQ(refusal(*hs256_, mint_with_header({{"alg", alg}}, claims(), kSecret)),
              "unsupported token algorithm")
        << alg;
  }
}

TEST_F(JwtTest, RefusesAlgorithmConfusion) {
  auto rs256 = make_rs256_verifier(rsa_keys().public_pem);
  ASSERT_TRUE(rs256);
  // HS256 "signed" with the public key's PEM text, the classic key confusion attack.
  const std::string& pem = rsa_keys().public_pem;
  EXPECT_EQ(refusal(**rs256, mint_with_header({{"alg", "HS256"}, {"typ", "JWT"}}, claims(), pem)),
            "unsupported token algorithm");
  // Claiming RS256 while signed with HMAC does not verify either.
  EXPECT_EQ(refusal(**rs256, mint_with_header({{"alg", "RS256"}}, claims(), pem)),
            "bad token signature");
  // And an HS256 verifier does not take RS256 tokens.
  EXPECT_EQ(refusal(*hs256_, mint_rs256(claims(), rsa_keys().private_pem)),
            "unsupported token algorithm");
}

TEST_F(JwtTest, RefusesGarbage) {
  const std::string good = mint_hs256(claims(), kSecret);
  const std::string h = good.substr(0, good.find('.'));
  const std::string p = base64url(claims().dump());
  const std::string alg_hs = base64url(R"({"alg":"HS256"})");
  // Wrong in the header or the payload: parse_jwt_shape refuses them too.
  const std::vector<std::string> bad_shape = {
      "",
      "nodots",
      "a.b",
      "..",
      good + ".extra",             // four parts
      "a.b.c.d.e",                 // five parts (JWE has five)
      "!!!." + p + ".c2ln",        // bad base64url in the header
      h + ".pay+load/." + "c2ln",  // standard base64 characters
      base64url("not json") + "." + p + ".c2ln",
      base64url(R"(["alg","HS256"])") + "." + p + ".c2ln",  // header not an object
      base64url(R"({"typ":"JWT"})") + "." + p + ".c2ln",    // no alg
      base64url(R"({"alg":256})") + "." + p + ".c2ln",      // alg not a string
      base64url(R"({"alg":"HS256"} trailing)") + "." + p + ".c2ln",
      alg_hs + "." + base64url("[1,2]") + ".c2ln",  // payload not an object
      alg_hs + "." + base64url("null") + ".c2ln",
      alg_hs + "." + base64url("") + ".c2ln",
  };
  for (const std::string& token : bad_shape) {
    EXPECT_EQ(refusal(*hs256_, token), "malformed token") << token;
    EXPECT_FALSE(parse_jwt_shape(token)) << token;
  }
  // Wrong only in the signature part, which parse_jwt_shape does not decode.
  for (const char* signature : {"", "c2ln=x", "A", "c2l+"}) {
    EXPECT_EQ(refusal(*hs256_, h + "." + p + "." + signature), "malformed token") << signature;
  }
  EXPECT_EQ(
      refusal(*hs256_, mint_with_header({{"alg", "HS256"}, {"crit", {"exp"}}}, claims(), kSecret)),
      "unsupported token extension");
}

TEST_F(JwtTest, RefusesMissingOrWrongTypedClaims) {
  json no_sub = claims();
  no_sub.erase("sub");
  EXPECT_EQ(hs_refusal(no_sub), "the token has no subject");
  EXPECT_EQ(hs_refusal(claims({{"sub", ""}})), "the token has no subject");
  EXPECT_EQ(hs_refusal(claims({{"sub", 42}})), "the token has no subject");
  EXPECT_EQ(hs_refusal(claims({{"sub", std::string(256, 'u')}})), "");
  EXPECT_EQ(hs_refusal(claims({{"sub", std::string(257, 'u')}})), "bad token subject");
  EXPECT_EQ(hs_refusal(claims({{"sub", "alice\nFAKE LOG LINE"}})), "bad token subject");
  EXPECT_EQ(hs_refusal(claims({{"sub", std::string("a\0b", 3)}})), "bad token subject");

  json no_exp = claims();
  no_exp.erase("exp");
  EXPECT_EQ(hs_refusal(no_exp), "the token has no expiry");
  EXPECT_EQ(hs_refusal(claims({{"exp", std::to_string(kNow + 3600)}})), "malformed token");
  EXPECT_EQ(hs_refusal(claims({{"exp", true}})), "malformed token");
  EXPECT_EQ(hs_refusal(claims({{"exp", nullptr}})), "malformed token");
}

TEST_F(JwtTest, RefusesTokensOver8KiB) {
  // The longest token that fits, then one byte of payload more.
  std::string fits;
  for (std::size_t pad = 5900; pad < 7000; ++pad) {
    const std::string token = mint_hs256(claims({{"pad", std::string(pad, 'x')}}), kSecret);
    if (token.size() > 8192) {
      EXPECT_EQ(refusal(*hs256_, token), "token too long");
      EXPECT_FALSE(parse_jwt_shape(token));
      break;
    }
    fits = token;
  }
  ASSERT_GT(fits.size(), 8185u);
  EXPECT_EQ(refusal(*hs256_, fits), "");
  EXPECT_EQ(refusal(*hs256_, std::string(1 << 20, 'a')), "token too long");
}

TEST_F(JwtTest, SurvivesDeeplyNestedJson) {
  const std::string deep = std::string(2500, '[') + std::string(2500, ']');
  json payload = claims();
  payload["deep"] = json::parse(deep);
  EXPECT_EQ(hs_refusal(payload), "");
  EXPECT_EQ(refusal(*hs256_, base64url(deep) + "." + base64url(claims().dump()) + ".c2ln"),
            "malformed token");
}

TEST_F(JwtTest, ParseShapeChecksNoSignature) {
  EXPECT_TRUE(parse_jwt_shape(mint_hs256(claims(), kSecret)));
  EXPECT_TRUE(parse_jwt_shape(mint_hs256(claims(), "another secret")));
  EXPECT_TRUE(parse_jwt_shape(mint_unsigned(claims())));
  Status garbage = parse_jwt_shape("x.y.z");
  EXPECT_EQ(garbage.code(), ErrorCode::unauthorized);
}

TEST_F(JwtTest, VerifiesFromManyThreadsAtOnce) {
  auto rs256 = make_rs256_verifier(rsa_keys().public_pem);
  ASSERT_TRUE(rs256);
  const std::string rs_token = mint_rs256(claims(), rsa_keys().private_pem);
  const std::string hs_token = mint_hs256(claims(), kSecret);
  std::vector<std::thread> threads;
  std::vector<int> accepted(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        accepted[t] += (*rs256)->verify(rs_token, kNow, JwtPolicy{}, "role").is_ok();
        accepted[t] += hs256_->verify(hs_token, kNow, JwtPolicy{}, "role").is_ok();
      }
    });
  }
  for (std::thread& thread : threads)
    thread.join();
  for (int count : accepted)
    EXPECT_EQ(count, 100);
}

TEST(JwtBase64UrlTest, RoundTripsEveryLength) {
  std::string bytes;
  for (int n = 0; n < 40; ++n) {
    std::string decoded;
    const std::string encoded = base64url_encode(bytes);
    EXPECT_EQ(encoded, base64url(bytes));  // the test minter's independent encoding
    ASSERT_TRUE(base64url_decode(encoded, decoded)) << encoded;
    EXPECT_EQ(decoded, bytes);
    bytes.push_back(static_cast<char>(n * 37 + 250));
  }
}

TEST(JwtBase64UrlTest, UsesTheUrlAlphabetAndAcceptsPadding) {
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  std::string out;
  ASSERT_TRUE(base64url_decode("-_8", out));
  EXPECT_EQ(out, "\xfb\xff");
  ASSERT_TRUE(base64url_decode("-_8=", out));
  EXPECT_EQ(out, "\xfb\xff");
  ASSERT_TRUE(base64url_decode("QQ==", out));
  EXPECT_EQ(out, "A");
  ASSERT_TRUE(base64url_decode("", out));
  EXPECT_EQ(out, "");
}

TEST(JwtBase64UrlTest, RefusesWhatIsNotCanonicalBase64Url) {
  std::string out;
  for (const char* bad : {"+/8", "-_8==", "QQ=", "QQ===", "Q===", "====", "=", "Q", "QUJDR", "QR",
                          "QUJ=QUJD", "QU JD", "QUJD\n", "QUK"}) {
    EXPECT_FALSE(base64url_decode(bad, out)) << bad;
  }
}

}  // namespace
}  // namespace ticketaid
