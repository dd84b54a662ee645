#include "limits/auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <fstream>
#include <iterator>
#include <utility>
#include <vector>

#include "limits/jwt.h"

namespace ticketaid {
namespace {

constexpr std::size_t kMaxFileBytes = 1 << 20;    // key and secret files are small
constexpr std::size_t kMinHs256SecretBytes = 32;  // RFC 7518 §3.2: at least the hash size

using Digest = std::array<unsigned char, SHA256_DIGEST_LENGTH>;

Digest sha256(std::string_view text) {
  Digest digest{};
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest.data());
  return digest;
}

std::string hex_prefix(const Digest& digest, std::size_t chars) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < digest.size() && out.size() < chars; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xf];
  }
  out.resize(std::min(out.size(), chars));
  return out;
}

std::string_view trim(std::string_view text) {
  constexpr std::string_view kSpace = " \t\r\n";
  const std::size_t first = text.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(kSpace) - first + 1);
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

Status bad_config(std::string key, std::string_view what) {
  return Status::error(ErrorCode::bad_request, key + ": " + std::string(what));
}

// The whole of a small file; the message names the key, never the content.
Result<std::string> read_small_file(const std::string& key, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return bad_config(key, "cannot read " + path);
  std::string content;
  content.resize(kMaxFileBytes + 1);
  in.read(content.data(), static_cast<std::streamsize>(content.size()));
  if (in.bad()) return bad_config(key, "cannot read " + path);
  content.resize(static_cast<std::size_t>(in.gcount()));
  if (content.size() > kMaxFileBytes) return bad_config(key, path + " is larger than 1 MiB");
  return content;
}

// Where the request carries its token: the first source present wins. An empty view
// means none; an Authorization header of another scheme (Basic from a proxy) is not one.
Result<std::string_view> find_token(const Credentials& credentials, std::string_view cookie_name) {
  const std::string_view authorization = trim(credentials.authorization);
  const std::size_t space = authorization.find_first_of(" \t");
  if (iequals(authorization.substr(0, space), "bearer")) {
    const std::string_view token =
        space == std::string_view::npos ? std::string_view() : trim(authorization.substr(space));
    if (token.empty()) {
      return Status::error(ErrorCode::unauthorized, "malformed authorization header");
    }
    return token;
  }
  if (!credentials.query_token.empty()) return credentials.query_token;
  return cookie_value(credentials.cookie_header, cookie_name);
}

class AnonymousAuthenticator final : public Authenticator {
 public:
  Result<Identity> authenticate(const Credentials& credentials) const override {
    Identity identity;
    identity.user = std::string(credentials.client_address);
    return identity;
  }
};

class ApiKeyAuthenticator final : public Authenticator {
 public:
  ApiKeyAuthenticator(std::vector<Digest> keys, std::string admin_role, std::string cookie_name)
      : keys_member_(std::move(keys)),
        admin_role_member_(std::move(admin_role)),
        cookie_name_member_(std::move(cookie_name)) {}

  Result<Identity> authenticate(const Credentials& credentials) const override {
    Result<std::string_view> key = find_token(credentials, cookie_name_member_);
    if (!key) return key.status();
    if (key->empty()) return Status::error(ErrorCode::unauthorized, "missing credentials");
    // Compare digests, all of them, so that the time taken says nothing about the keys.
    const Digest presented = sha256(*key);
    int matches = 0;
    for (const Digest& stored : keys_member_) {
      matches |=
          static_cast<int>(CRYPTO_memcmp(stored.data(), presented.data(), stored.size()) == 0);
    }
    if (matches == 0) return Status::error(ErrorCode::unauthorized, "invalid API key");
    Identity identity;
    identity.user = "key:" + hex_prefix(presented, 12);
    identity.role = admin_role_member_;
    identity.anonymous = false;
    identity.admin = true;
    return identity;
  }

 private:
  std::vector<Digest> keys_member_;  // SHA-256 of each accepted key
  std::string admin_role_member_;
  std::string cookie_name_member_;
};

class JwtAuthenticator final : public Authenticator {
 public:
  JwtAuthenticator(std::unique_ptr<JwtVerifier> verifier, const Settings& settings,
                   const Clock& clock)
      : verifier_member_(std::move(verifier)),
        policy_member_{settings.auth_jwt_issuer, settings.auth_jwt_audience,
                       settings.auth_jwt_leeway_s},
        role_claim_member_(settings.auth_jwt_role_claim),
        admin_role_member_(settings.auth_admin_role),
        cookie_name_member_(settings.auth_cookie_name),
        clock_member_(clock) {}

  Result<Identity> authenticate(const Credentials& credentials) const override {
    Result<std::string_view> token = find_token(credentials, cookie_name_member_);
    if (!token) return token.status();
    if (token->empty()) return Status::error(ErrorCode::unauthorized, "missing credentials");
    const std::int64_t now_ms = clock_member_.unix_ms();
    const std::int64_t now_s = now_ms >= 0 ? now_ms / 1000 : (now_ms - 999) / 1000;
    Result<JwtClaims> claims =
        verifier_member_->verify(*token, now_s, policy_member_, role_claim_member_);
    if (!claims) return claims.status();
    Identity identity;
    identity.user = std::move(claims->subject);
    identity.role = std::move(claims->role);
    identity.anonymous = false;
    identity.admin = !identity.role.empty() && identity.role == admin_role_member_;
    return identity;
  }

 private:
  std::unique_ptr<JwtVerifier> verifier_member_;
  JwtPolicy policy_member_;
  std::string role_claim_member_;
  std::string admin_role_member_;
  std::string cookie_name_member_;
  const Clock& clock_member_;
};

Result<std::vector<Digest>> load_api_keys(const Settings& settings) {
  std::vector<Digest> keys;
  for (const std::string& key : settings.auth_api_keys) {
    if (const std::string_view trimmed = trim(key); !trimmed.empty()) {
      keys.push_back(sha256(trimmed));
    }
  }
  if (!settings.auth_api_keys_file.empty()) {
    Result<std::string> content =
        read_small_file("auth.api_keys_file", settings.auth_api_keys_file);
    if (!content) return content.status();
    std::string_view rest = *content;
    while (!rest.empty()) {
      const std::size_t end = rest.find('\n');
      const std::string_view line = trim(rest.substr(0, end));
      rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
      if (!line.empty() && line.front() != '#') keys.push_back(sha256(line));
    }
  }
  if (keys.empty()) {
    return Status::error(ErrorCode::bad_request,
                         "auth.mode = api_key needs at least one key in auth.api_keys or "
                         "auth.api_keys_file");
  }
  return keys;
}

Result<std::unique_ptr<JwtVerifier>> load_jwt_verifier(const Settings& settings) {
  if (!settings.auth_jwt_public_key_file.empty()) {
    Result<std::string> pem =
        read_small_file("auth.jwt.public_key_file", settings.auth_jwt_public_key_file);
    if (!pem) return pem.status();
    Result<std::unique_ptr<JwtVerifier>> verifier = make_rs256_verifier(*pem);
    if (!verifier) {
      return bad_config("auth.jwt.public_key_file",
                        settings.auth_jwt_public_key_file + ": " + verifier.status().message());
    }
    return verifier;
  }
  if (!settings.auth_jwt_secret.empty() && !settings.auth_jwt_secret_file.empty()) {
    return Status::error(ErrorCode::bad_request,
                         "auth.jwt.secret and auth.jwt.secret_file are both set; keep one");
  }
  std::string secret = settings.auth_jwt_secret;
  std::string key = "auth.jwt.secret";
  if (!settings.auth_jwt_secret_file.empty()) {
    key = "auth.jwt.secret_file";
    Result<std::string> content = read_small_file(key, settings.auth_jwt_secret_file);
    if (!content) return content.status();
    secret = std::move(*content);
    if (secret.ends_with('\n')) secret.pop_back();
    if (secret.ends_with('\r')) secret.pop_back();
  }
  if (secret.empty()) {
    return Status::error(ErrorCode::bad_request,
                         "auth.mode = jwt needs auth.jwt.public_key_file (RS256) or "
                         "auth.jwt.secret / auth.jwt.secret_file (HS256)");
  }
  if (secret.size() < kMinHs256SecretBytes) {
    return bad_config(key, "an HS256 secret must be at least 32 bytes (RFC 7518 §3.2)");
  }
  return make_hs256_verifier(std::move(secret));
}

}  // namespace

Result<std::shared_ptr<const Authenticator>> make_authenticator(const Settings& settings,
                                                                const Clock& clock) {
  if (settings.auth_mode == "none") {
    return std::shared_ptr<const Authenticator>(std::make_shared<AnonymousAuthenticator>());
  }
  if (settings.auth_mode == "api_key") {
    Result<std::vector<Digest>> keys = load_api_keys(settings);
    if (!keys) return keys.status();
    return std::shared_ptr<const Authenticator>(std::make_shared<ApiKeyAuthenticator>(
        std::move(*keys), settings.auth_admin_role, settings.auth_cookie_name));
  }
  if (settings.auth_mode == "jwt") {
    Result<std::unique_ptr<JwtVerifier>> verifier = load_jwt_verifier(settings);
    if (!verifier) return verifier.status();
    return std::shared_ptr<const Authenticator>(
        std::make_shared<JwtAuthenticator>(std::move(*verifier), settings, clock));
  }
  return Status::error(ErrorCode::bad_request,
                       "auth.mode: must be none, api_key or jwt, not " + settings.auth_mode);
}

std::string_view cookie_value(std::string_view cookie_header, std::string_view name) {
  if (name.empty()) return {};
  std::string_view rest = cookie_header;
  while (!rest.empty()) {
    const std::size_t end = rest.find(';');
    const std::string_view pair = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    const std::size_t eq = pair.find('=');
    if (eq == std::string_view::npos || trim(pair.substr(0, eq)) != name) continue;
    std::string_view value = trim(pair.substr(eq + 1));
    // RFC 6265 §4.1.1: a cookie-value may be wrapped in double quotes.
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    return value;
  }
  return {};
}

}  // namespace ticketaid
