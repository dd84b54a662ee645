// libFuzzer target for the token parsing that any client can reach before it is
// authenticated: the JWT shape parser, a whole HS256 verification (with a fixed
// secret and time, so that a run is reproducible) and the Cookie header parser.
//
// Build and run: .ci/fuzz [SECONDS] (tests/fuzz/CMakeLists.txt is the build).
// Reproduce one input: build-fuzz/jwt_fuzz FILE
//
// Thread-safety: libFuzzer calls the entry point from one thread.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "limits/auth.h"
#include "limits/jwt.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ticketaid;
  static const std::unique_ptr<JwtVerifier> verifier =
      make_hs256_verifier("fuzz-secret-fuzz-secret-fuzz-secret!");
  static const JwtPolicy policy{"https://idp.example", "ticketaid", 60};
  constexpr std::int64_t kNow = 1'800'000'000;

  const std::string_view input(reinterpret_cast<const char*>(data), size);
  (void)parse_jwt_shape(input);
  Result<JwtClaims> claims = verifier->verify(input, kNow, policy, "role");
  if (claims) {
    // Only a token signed with the secret gets here; its subject was checked.
    if (claims->subject.empty() || claims->subject.size() > 256) __builtin_trap();
  }
  const std::string_view cookie = cookie_value(input, "ticketaid_token");
  if (cookie.size() > input.size()) __builtin_trap();
  return 0;
}
