#include "support/jwt_mint.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <memory>
#include <stdexcept>
#include <vector>

namespace ticketaid::testing {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;

[[noreturn]] void fail(const char* what) {
  throw std::runtime_error(std::string("jwt_mint: ") + what + " failed");
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(size));
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  static const char kEmpty = 0;
  if (HMAC(EVP_sha256(), key.empty() ? &kEmpty : key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac,
           &mac_len) == nullptr) {
    fail("HMAC");
  }
  return std::string(reinterpret_cast<const char*>(mac), mac_len);
}

std::string signing_input(const nlohmann::json& header, const nlohmann::json& payload) {
  return base64url(header.dump()) + "." + base64url(payload.dump());
}

}  // namespace

RsaKeyPair generate_rsa_keypair() {
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(
      EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, nullptr), &EVP_PKEY_CTX_free);
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), 2048) != 1 ||
      EVP_PKEY_keygen(ctx.get(), &raw) != 1) {
    fail("RSA key generation");
  }
  PkeyPtr key(raw);
  BioPtr priv(BIO_new(BIO_s_mem()));
  BioPtr pub(BIO_new(BIO_s_mem()));
  if (!priv || !pub ||
      PEM_write_bio_PrivateKey(priv.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1 ||
      PEM_write_bio_PUBKEY(pub.get(), key.get()) != 1) {
    fail("PEM writing");
  }
  return RsaKeyPair{bio_text(priv.get()), bio_text(pub.get())};
}

std::string base64url(std::string_view bytes) {
  // EVP_EncodeBlock writes standard base64 with padding and a NUL: translate it.
  std::vector<unsigned char> out(4 * ((bytes.size() + 2) / 3) + 1);
  const int n = EVP_EncodeBlock(out.data(), reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  std::string text(reinterpret_cast<const char*>(out.data()), static_cast<std::size_t>(n));
  while (!text.empty() && text.back() == '=')
    text.pop_back();
  for (char& c : text) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return text;
}

std::string mint_hs256(const nlohmann::json& payload, std::string_view secret) {
  return mint_with_header({{"alg", "HS256"}, {"typ", "JWT"}}, payload, secret);
}

std::string mint_rs256(const nlohmann::json& payload, std::string_view private_pem) {
  BioPtr bio(BIO_new_mem_buf(private_pem.data(), static_cast<int>(private_pem.size())));
  PkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) fail("reading the private key");
  const std::string input = signing_input({{"alg", "RS256"}, {"typ", "JWT"}}, payload);
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  std::size_t size = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &size,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    fail("RSA signing");
  }
  std::string signature(size, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &size,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    fail("RSA signing");
  }
  signature.resize(size);
  return input + "." + base64url(signature);
}

std::string mint_with_header(const nlohmann::json& header, const nlohmann::json& payload,
                             std::string_view hmac_secret) {
  const std::string input = signing_input(header, payload);
  return input + "." + base64url(hmac_sha256(hmac_secret, input));
}

std::string mint_unsigned(const nlohmann::json& payload) {
  return signing_input({{"alg", "none"}}, payload) + ".";
}

}  // namespace ticketaid::testing
