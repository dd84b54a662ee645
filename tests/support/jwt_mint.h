// Mints JSON Web Tokens for tests: HS256 and RS256 tokens that the daemon should
// accept, and deliberately wrong ones (any header signed with an HMAC secret, alg
// none) that it must refuse. Independent of src/limits/jwt.cpp on purpose, so that a
// bug there cannot hide itself in both the minting and the checking.
//
// Failures of OpenSSL (which would be bugs in the test) throw std::runtime_error.
//
// Thread-safety: pure functions; call them from any thread.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace ticketaid::testing {

struct RsaKeyPair {
  std::string private_pem;  // PKCS#8, "-----BEGIN PRIVATE KEY-----"
  std::string public_pem;   // SubjectPublicKeyInfo, "-----BEGIN PUBLIC KEY-----"
};

// A fresh RSA-2048 key pair (takes tens of milliseconds: share one per suite).
RsaKeyPair generate_rsa_keypair();

// base64url without padding, as JWTs use it.
std::string base64url(std::string_view bytes);

// {"alg":"HS256","typ":"JWT"} . payload, signed with HMAC-SHA256 under secret.
std::string mint_hs256(const nlohmann::json& payload, std::string_view secret);
// {"alg":"RS256","typ":"JWT"} . payload, signed with RSASSA-PKCS1-v1_5 SHA-256.
std::string mint_rs256(const nlohmann::json& payload, std::string_view private_pem);
// header . payload signed with HMAC-SHA256 under hmac_secret whatever the header's alg
// says: for algorithm confusion tests (alg RS256 signed with the public key's text).
std::string mint_with_header(const nlohmann::json& header, const nlohmann::json& payload,
                             std::string_view hmac_secret);
// {"alg":"none"} . payload . (empty signature).
std::string mint_unsigned(const nlohmann::json& payload);

}  // namespace ticketaid::testing
