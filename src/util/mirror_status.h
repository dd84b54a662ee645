// What the MongoDB mirror reports about itself, for /ready, /metrics and
// `ticketaid doctor` (a plain value; the mirror is in src/sync/).
//
// Thread-safety: a value type.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace ticketaid {

struct MirrorStatus {
  bool enabled = false;  // mongo.uri is set
  // "starting" (before the first attempt), "backfilling", "syncing", "caught_up",
  // "retrying" (the last attempt failed; the next waits for the backoff)
  std::string state = "off";
  std::string target;                      // hosts/database, without credentials
  int64_t outbox_depth = 0;                // rows not yet acknowledged by MongoDB
  double lag_s = 0;                        // age of the oldest waiting row; 0 when empty
  std::optional<int64_t> last_success_ms;  // unix ms of the last acknowledged batch
  std::string last_error;                  // the last failure, "" once a batch succeeds again
  std::map<std::string, int64_t> errors;   // failed attempts by kind, since start
  int64_t rows_sent = 0;                   // outbox rows acknowledged since start
  int64_t overflowed = 0;                  // items written to an _overflow collection since start
  int64_t read_through_hits = 0;
  int64_t read_through_misses = 0;
};

}  // namespace ticketaid
