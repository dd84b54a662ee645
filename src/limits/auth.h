// Who is asking: authentication (auth.mode none, api_key or jwt) and the identity
// that per-user limits and session ownership are keyed by.
//
// An Authenticator is built once from the settings (reading key and secret files)
// and is immutable afterwards. Under "none" the identity is the client's address
// (after trusted proxies, see client_address.h) and nobody is admin; under api_key a
// key holder is a service acting for every user (admin role); under jwt the user is
// the token's sub and the role is the configured claim.
//
// Thread-safety: authenticate() may be called from any thread at once.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "util/clock.h"
#include "util/config.h"
#include "util/status.h"

namespace ticketaid {

struct Identity {
  std::string user;       // the JWT sub, "key:<id>" for an API key, or the client address
  std::string role;       // empty when none
  bool anonymous = true;  // auth.mode = none: user is an address, nothing is owned
  bool admin = false;     // role == auth.admin_role (every API key holder)

  // May this identity act on data owned by `owner`? Anonymous identities may (under
  // auth.mode none everybody on the network is trusted alike), admins may, and a
  // user may act on their own.
  bool may_access(std::string_view owner) const { return anonymous || admin || owner == user; }
};

// Where a token may come from, as the request carried it.
struct Credentials {
  std::string_view authorization = {};   // the Authorization header, "Bearer ..."
  std::string_view query_token = {};     // ?token=..., only for WebSocket upgrades
  std::string_view cookie_header = {};   // the Cookie header
  std::string_view client_address = {};  // after trusted proxies
};

class Authenticator {
 public:
  virtual ~Authenticator() = default;
  // An unauthorized error ("missing credentials", "the token has expired", ...) whose
  // message is safe to send to the client and to log: it never holds the token.
  virtual Result<Identity> authenticate(const Credentials& credentials) const = 0;
};

// Fails (one line naming the key) when the mode's keys are missing or unreadable:
// api_key without any key, jwt without a secret or public key, an unreadable file,
// a public key that is not an RSA PEM key. `clock` must outlive the authenticator.
Result<std::shared_ptr<const Authenticator>> make_authenticator(const Settings& settings,
                                                                const Clock& clock);

// The value of cookie `name` in a Cookie header; empty when absent.
std::string_view cookie_value(std::string_view cookie_header, std::string_view name);

}  // namespace ticketaid
