// The optional MongoDB mirror as the rest of the daemon sees it (SPEC §6): its
// state, and the shared cache of ticket answers it can offer (read-through). The
// implementation, with the MongoDB C driver, is in src/sync/ and is built only
// when libmongoc is found.
//
// Thread-safety: status() and SharedAnswers::find from any thread; find blocks
// (network), so never on an I/O thread. start/stop from the owner.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "store/store.h"
#include "util/mirror_status.h"

namespace ticketaid {

// A finished answer to a ticket with a given body, made by any node.
struct SharedAnswer {
  std::string answer;
  GenerationStats stats;
};

class SharedAnswers {
 public:
  virtual ~SharedAnswers() = default;
  // The answer another node stored for this ticket and body, if MongoDB has one
  // and answers within mongo.read_through_timeout_ms; nullopt otherwise.
  virtual std::optional<SharedAnswer> find(std::string_view ticket_id, std::string_view body) = 0;
};

class Mirror {
 public:
  virtual ~Mirror() = default;
  virtual void start() = 0;  // starts the syncer thread
  virtual void stop() = 0;   // ends it, leaving what was not sent in the outbox
  virtual MirrorStatus status() const = 0;
  // nullptr unless mongo.read_through is on.
  virtual SharedAnswers* shared_answers() = 0;
};

}  // namespace ticketaid
