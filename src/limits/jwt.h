// JSON Web Tokens (RFC 7519), verified with OpenSSL: HS256 (HMAC-SHA256, compared
// with CRYPTO_memcmp) or RS256 (EVP_DigestVerify). docs/security.md says why not
// Debian's libjwt.
//
// The verifier is configured with exactly one algorithm; a token whose header names
// another (alg: none, HS256 with an RSA key as the secret, ...) is refused before any
// signature is checked. Claims are read with nlohmann/json: exp is required, nbf,
// iss and aud are checked when configured or present, with a leeway for exp/nbf.
//
// Thread-safety: a JwtVerifier is immutable after construction; verify() may be
// called from any thread at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "util/status.h"

namespace ticketaid {

struct JwtPolicy {
  std::string issuer;    // required iss when not empty
  std::string audience;  // required in aud (a string or an array) when not empty
  int leeway_s = 60;
};

struct JwtClaims {
  std::string subject;  // sub
  std::string role;     // the role claim's value when it is a string, else empty
};

class JwtVerifier {
 public:
  virtual ~JwtVerifier() = default;
  // An unauthorized Status with a short reason ("the token has expired") on failure.
  virtual Result<JwtClaims> verify(std::string_view token, std::int64_t now_unix_s,
                                   const JwtPolicy& policy, std::string_view role_claim) const = 0;
};

std::unique_ptr<JwtVerifier> make_hs256_verifier(std::string secret);
// The PEM text of an RSA public key; an error when it is not one.
Result<std::unique_ptr<JwtVerifier>> make_rs256_verifier(std::string_view public_key_pem);

// Splits and decodes a token's header and payload (no signature check): the parse
// step that verify() runs first, exposed for the fuzz target.
Status parse_jwt_shape(std::string_view token);

// base64url without padding, as JWTs use it (also accepts padding).
bool base64url_decode(std::string_view in, std::string& out);
std::string base64url_encode(std::string_view in);

}  // namespace ticketaid
