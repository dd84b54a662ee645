// The one place that speaks to MongoDB through the C driver: a client pool for one
// URI and database, and the three things the mirror asks of it (create indexes,
// run a list of writes in order, read one document).
//
// Each call pops a client from the pool and returns it, so calls may run on
// several threads at once (the syncer's, and the blocking pool's for
// read-through). Every call blocks on the network, bounded by the URI's timeouts
// (serverSelectionTimeoutMS, socketTimeoutMS; see make_mongo_connection).
//
// Thread-safety: every method from any thread.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sync/mirror_documents.h"
#include "util/status.h"

namespace ticketaid::mirror {

// A failed call, with the kind /metrics counts it under: "unreachable" (no server
// could be selected, the connection broke), "timeout", "duplicate_key",
// "write_error" (MongoDB refused a write), "document_too_large", "command_error" (auth, a refused
// command), "invalid" (a document the driver refused).
struct MongoError {
  std::string kind;
  std::string message;
};

class MongoConnection {
 public:
  virtual ~MongoConnection() = default;
  virtual std::optional<MongoError> create_indexes() = 0;
  // Runs the writes in order, grouping consecutive writes to one collection into
  // one ordered bulk write; stops at the first failure.
  virtual std::optional<MongoError> write(const std::vector<Write>& writes) = 0;
  // The document with this _id, as relaxed extended JSON; nullopt when there is
  // none; an error when MongoDB did not answer within max_time_ms.
  virtual Result<std::optional<nlohmann::json>> find_by_id(const std::string& collection,
                                                           const std::string& id,
                                                           int max_time_ms) = 0;
  virtual std::optional<MongoError> ping() = 0;
};

// Parses the URI (credentials, TLS and every option the C driver knows), and sets
// defaults where the URI says nothing: serverSelectionTimeoutMS=5000,
// connectTimeoutMS=5000, socketTimeoutMS=15000, appname=ticketaid. With
// bound_ms, all three are that instead, whatever the URI says: for lookups that a
// request waits for.
Result<std::unique_ptr<MongoConnection>> make_mongo_connection(const std::string& uri,
                                                               const std::string& database,
                                                               std::optional<int> bound_ms = {});

// "host:port,host:port/database" of a URI: the mirror's target, without credentials.
Result<std::string> mongo_target(const std::string& uri, const std::string& database);

}  // namespace ticketaid::mirror
