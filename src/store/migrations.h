// The store's schema and its versioned migrations, private to src/store/.
//
// The schema version lives in PRAGMA user_version and the file is marked as
// ticketaid's with PRAGMA application_id. Each migration step runs in its own
// BEGIN IMMEDIATE transaction together with the version bump, so a crash leaves the
// database at a whole version, and two processes opening it at once do not both
// apply a step.
//
// Thread-safety: migrate() uses the connection it is given and nothing else; call it
// before that connection is shared.
#pragma once

#include "store/sqlite_db.h"
#include "util/status.h"

namespace ticketaid::sqlite {

// The value of PRAGMA application_id in a ticketaid database ("TAID").
inline constexpr int kApplicationId = 0x54414944;

// Brings the database up to the newest schema this binary knows. Refuses a database
// whose version is newer, and a non-empty database that ticketaid did not create.
Status migrate(Connection& db);

}  // namespace ticketaid::sqlite
