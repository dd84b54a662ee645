#include "limits/jwt.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <array>
#include <cstddef>

#include <nlohmann/json.hpp>

namespace ticketaid {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxTokenBytes = 8 * 1024;
constexpr std::size_t kMaxSubjectBytes = 256;
constexpr int kMinRsaBits = 2048;  // RFC 7518 §3.3
constexpr std::size_t kMaxPemBytes = 64 * 1024;

Status unauthorized(std::string reason) {
  return Status::error(ErrorCode::unauthorized, std::move(reason));
}

Status malformed() {
  return unauthorized("malformed token");
}

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

// A token split at its dots and its first two parts decoded and parsed.
struct ParsedToken {
  json header;
  json payload;
  std::string alg;                 // the header's alg, a string
  std::string_view signing_input;  // "header.payload", as signed
  std::string_view signature;      // still base64url
};

Status decode_json_object(std::string_view part, json& out) {
  std::string text;
  if (!base64url_decode(part, text)) return malformed();
  out = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!out.is_object()) return malformed();  // also the parse failure (discarded)
  return Status::ok();
}

Status parse_token(std::string_view token, ParsedToken& out) {
  if (token.size() > kMaxTokenBytes) return unauthorized("token too long");
  const std::size_t dot1 = token.find('.');
  if (dot1 == std::string_view::npos) return malformed();
  const std::size_t dot2 = token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos) return malformed();
  if (token.find('.', dot2 + 1) != std::string_view::npos) return malformed();  // JWE, or worse

  if (Status s = decode_json_object(token.substr(0, dot1), out.header); !s) return s;
  if (Status s = decode_json_object(token.substr(dot1 + 1, dot2 - dot1 - 1), out.payload); !s) {
    return s;
  }
  const auto alg = out.header.find("alg");
  if (alg == out.header.end() || !alg->is_string()) return malformed();
  out.alg = alg->get<std::string>();
  // RFC 7515 §4.1.11: extensions we were told are critical but do not know → refuse.
  if (out.header.contains("crit")) return unauthorized("unsupported token extension");
  out.signing_input = token.substr(0, dot2);
  out.signature = token.substr(dot2 + 1);
  return Status::ok();
}

bool audience_matches(const json& aud, const std::string& wanted) {
  if (aud.is_string()) return aud.get_ref<const std::string&>() == wanted;
  if (!aud.is_array()) return false;
  for (const json& item : aud) {
    if (item.is_string() && item.get_ref<const std::string&>() == wanted) return true;
  }
  return false;
}

bool has_control_characters(const std::string& text) {
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return true;
  }
  return false;
}

// The registered claims (RFC 7519 §4.1), once the signature is known to be good.
Result<JwtClaims> check_claims(const json& payload, std::int64_t now_unix_s,
                               const JwtPolicy& policy, std::string_view role_claim) {
  const double now = static_cast<double>(now_unix_s);
  const double leeway = policy.leeway_s > 0 ? policy.leeway_s : 0;

  const auto exp = payload.find("exp");
  if (exp == payload.end()) return unauthorized("the token has no expiry");
  if (!exp->is_number()) return malformed();
  if (now >= exp->get<double>() + leeway) return unauthorized("the token has expired");

  if (const auto nbf = payload.find("nbf"); nbf != payload.end()) {
    if (!nbf->is_number()) return malformed();
    if (now < nbf->get<double>() - leeway) return unauthorized("the token is not valid yet");
  }

  if (!policy.issuer.empty()) {
    const auto iss = payload.find("iss");
    if (iss == payload.end() || !iss->is_string() ||
        iss->get_ref<const std::string&>() != policy.issuer) {
      return unauthorized("wrong token issuer");
    }
  }

  if (!policy.audience.empty()) {
    const auto aud = payload.find("aud");
    if (aud == payload.end() || !audience_matches(*aud, policy.audience)) {
      return unauthorized("wrong token audience");
    }
  }

  JwtClaims claims;
  const auto sub = payload.find("sub");
  if (sub == payload.end() || !sub->is_string() || sub->get_ref<const std::string&>().empty()) {
    return unauthorized("the token has no subject");
  }
  claims.subject = sub->get<std::string>();
  // The subject keys limits and ownership and reaches the logs: keep it plain.
  if (claims.subject.size() > kMaxSubjectBytes || has_control_characters(claims.subject)) {
    return unauthorized("bad token subject");
  }

  if (!role_claim.empty()) {
    const auto role = payload.find(role_claim);
    if (role != payload.end() && role->is_string()) claims.role = role->get<std::string>();
  }
  return claims;
}

// The parts every algorithm shares: shape, the one algorithm, signature, claims.
class VerifierBase : public JwtVerifier {
 public:
  explicit VerifierBase(std::string alg) : alg_member_(std::move(alg)) {}

  Result<JwtClaims> verify(std::string_view token, std::int64_t now_unix_s, const JwtPolicy& policy,
                           std::string_view role_claim) const final {
    ParsedToken parsed;
    if (Status s = parse_token(token, parsed); !s) return s;
    if (parsed.alg != alg_member_) {
      return unauthorized("unsupported token algorithm");
    }
    std::string signature;
    if (parsed.signature.empty() || !base64url_decode(parsed.signature, signature)) {
      return malformed();
    }
    if (!signature_ok(parsed.signing_input, signature)) {
      return unauthorized("bad token signature");
    }
    return check_claims(parsed.payload, now_unix_s, policy, role_claim);
  }

 protected:
  virtual bool signature_ok(std::string_view signing_input, std::string_view signature) const = 0;

 private:
  std::string alg_member_;
};

class Hs256Verifier final : public VerifierBase {
 public:
  explicit Hs256Verifier(std::string secret)
      : VerifierBase("HS256"), secret_member_(std::move(secret)) {}

 private:
  bool signature_ok(std::string_view signing_input, std::string_view signature) const override {
    std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
    unsigned int mac_len = 0;
    // data() is never null, even for an empty secret (OpenSSL 3.0 refuses a null key).
    const unsigned char* ok =
        HMAC(EVP_sha256(), secret_member_.data(), static_cast<int>(secret_member_.size()),
             reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(),
             mac.data(), &mac_len);
    if (ok == nullptr) {
      ERR_clear_error();
      return false;
    }
    if (signature.size() != mac_len) return false;
    return CRYPTO_memcmp(mac.data(), signature.data(), mac_len) == 0;
  }

  std::string secret_member_;
};

class Rs256Verifier final : public VerifierBase {
 public:
  explicit Rs256Verifier(PkeyPtr key) : VerifierBase("RS256"), key_member_(std::move(key)) {}

 private:
  bool signature_ok(std::string_view signing_input, std::string_view signature) const override {
    std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
    const bool ok =
        ctx != nullptr &&
        EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_member_.get()) == 1 &&
        EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                         signature.size(),
                         reinterpret_cast<const unsigned char*>(signing_input.data()),
                         signing_input.size()) == 1;
    ERR_clear_error();  // a bad signature leaves its reason queued on this thread
    return ok;
  }

  PkeyPtr key_member_;  // never modified after construction, so shared by all threads
};

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

}  // namespace

std::unique_ptr<JwtVerifier> make_hs256_verifier(std::string secret) {
  return std::make_unique<Hs256Verifier>(std::move(secret));
}

Result<std::unique_ptr<JwtVerifier>> make_rs256_verifier(std::string_view public_key_pem) {
  if (public_key_pem.size() > kMaxPemBytes) {
    return Status::error(ErrorCode::bad_request, "too long for a PEM public key");
  }
  std::unique_ptr<BIO, BioFree> bio(
      BIO_new_mem_buf(public_key_pem.data(), static_cast<int>(public_key_pem.size())));
  PkeyPtr key(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  ERR_clear_error();
  if (!key) {
    return Status::error(ErrorCode::bad_request,
                         "not a PEM public key (expected -----BEGIN PUBLIC KEY-----)");
  }
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA) {
    return Status::error(ErrorCode::bad_request, "not an RSA public key (RS256 needs one)");
  }
  if (EVP_PKEY_get_bits(key.get()) < kMinRsaBits) {
    return Status::error(ErrorCode::bad_request,
                         "the RSA key is shorter than 2048 bits (RFC 7518 §3.3)");
  }
  return std::unique_ptr<JwtVerifier>(std::make_unique<Rs256Verifier>(std::move(key)));
}

Status parse_jwt_shape(std::string_view token) {
  ParsedToken parsed;
  return parse_token(token, parsed);
}

bool base64url_decode(std::string_view in, std::string& out) {
  out.clear();
  // Padding, when present, must complete the last group of four.
  if (!in.empty() && in.size() % 4 == 0 && in.back() == '=') {
    in.remove_suffix(in.ends_with("==") ? 2 : 1);  // any '=' left fails below
  }
  if (in.size() % 4 == 1) return false;
  out.reserve(in.size() / 4 * 3 + 2);
  std::uint32_t bits = 0;
  int count = 0;
  for (const char c : in) {
    const int value = sextet(c);
    if (value < 0) return false;
    bits = (bits << 6) | static_cast<std::uint32_t>(value);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xff));
    }
  }
  // The unused low bits of the last character must be zero (one encoding per value).
  return (bits & ((1u << count) - 1)) == 0;
}

std::string base64url_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::uint32_t bits = 0;
  int count = 0;
  for (const char c : in) {
    bits = (bits << 8) | static_cast<unsigned char>(c);
    count += 8;
    while (count >= 6) {
      count -= 6;
      out.push_back(kAlphabet[(bits >> count) & 0x3f]);
    }
  }
  if (count > 0) out.push_back(kAlphabet[(bits << (6 - count)) & 0x3f]);
  return out;
}

}  // namespace ticketaid
