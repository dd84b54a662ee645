// The MongoDB mirror: the syncer thread that empties the outbox into MongoDB, and
// the read-through lookup of ticket answers (SPEC §6; docs/operations.md).
//
// The syncer takes the oldest outbox rows (mongo.batch_size at a time), turns them
// into idempotent writes (mirror_documents.h), sends them as ordered bulk writes
// and acknowledges them once MongoDB has answered. A failure leaves the rows where
// they are; the next attempt waits 0.5 s, doubling up to mongo.retry_max_s, each
// wait drawn between half and all of that (jitter), so that nodes do not retry in
// step. A duplicate-key error (two upserts of one new document racing) is retried
// at once, a few times, before it counts as a failure. Indexes are created before
// the first batch. The thread never runs on an I/O thread and nothing on the
// request path waits for it.
//
// Thread-safety: status() from any thread, I/O threads included (it only copies
// what the syncer last read); shared_answers()->find from any thread but an I/O
// thread; start and stop from the owner.
#pragma once

#include <memory>
#include <string>

#include "core/mirror.h"
#include "store/outbox.h"
#include "util/config.h"
#include "util/status.h"

namespace ticketaid {

// The mirror's target for the store ("host:port,.../database"), checking the URI.
Result<std::string> mongo_mirror_target(const Settings& settings);

// Needs settings.mongo_uri set; the outbox must outlive the mirror.
Result<std::unique_ptr<Mirror>> make_mongo_mirror(const Settings& settings, Outbox& outbox,
                                                  std::string target);

}  // namespace ticketaid
