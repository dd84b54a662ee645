// Turns the mongo.* settings into the MongoDB mirror, or into none: the one place
// that knows whether this ticketaid was built with the mirror (libmongoc).
//
// Thread-safety: call from the starting thread.
#pragma once

#include <memory>
#include <string>

#include "core/mirror.h"
#include "store/outbox.h"
#include "util/config.h"
#include "util/status.h"

namespace ticketaid {

// The target the store's outbox is kept for: "" when mongo.uri is empty; an error
// when the URI is invalid or this build has no mirror.
Result<std::string> mirror_target(const Settings& settings);

// nullptr when target is "" (the mirror is off).
Result<std::unique_ptr<Mirror>> make_mirror(const Settings& settings, Outbox& outbox,
                                            const std::string& target);

// Asks MongoDB for a ping (for `ticketaid doctor`); blocks up to the URI's timeouts.
Status probe_mirror(const Settings& settings);

// Whether this build has the mirror.
bool mirror_built();

}  // namespace ticketaid
