// The MongoDB C driver behind MongoConnection (see mongo_connection.h).
#include "sync/mongo_connection.h"

#include <mongoc/mongoc.h>

#include <mutex>
#include <utility>

#include <spdlog/spdlog.h>

namespace ticketaid::mirror {
namespace {

// The driver's own log lines go to the daemon's log (they never hold the URI's
// credentials: the driver logs hosts only).
void log_from_driver(mongoc_log_level_t level, const char* domain, const char* message, void*) {
  if (level <= MONGOC_LOG_LEVEL_WARNING) {
    spdlog::warn("mongoc {}: {}", domain, message);
  } else {
    spdlog::debug("mongoc {}: {}", domain, message);
  }
}

void init_driver() {
  static std::once_flag once;
  // mongoc_cleanup is never called: the driver's globals live as long as the process.
  std::call_once(once, [] {
    mongoc_log_set_handler(log_from_driver, nullptr);
    mongoc_init();
  });
}

// An owned bson_t (its alignment attribute keeps it out of std::unique_ptr).
class Bson {
 public:
  explicit Bson(bson_t* b) : b_(b) {}
  Bson(Bson&& other) noexcept : b_(std::exchange(other.b_, nullptr)) {}
  Bson& operator=(Bson&&) = delete;
  ~Bson() {
    if (b_ != nullptr) bson_destroy(b_);
  }
  bson_t* get() const { return b_; }

 private:
  bson_t* b_;
};

Result<Bson> to_bson(const nlohmann::ordered_json& value) {
  const std::string text = value.dump();
  bson_error_t error;
  bson_t* b = bson_new_from_json(reinterpret_cast<const uint8_t*>(text.data()),
                                 static_cast<ssize_t>(text.size()), &error);
  if (b == nullptr) {
    return Status::error(ErrorCode::internal, std::string("mongo: bad document: ") + error.message);
  }
  return Bson(b);
}

bool is_duplicate_key(uint32_t code) {
  return code == 11000 || code == 11001;
}

MongoError classify(const bson_error_t& error) {
  std::string message = error.message;
  if (error.domain == MONGOC_ERROR_SERVER_SELECTION) return {"unreachable", message};
  if (error.domain == MONGOC_ERROR_STREAM) {
    if (error.code == MONGOC_ERROR_STREAM_SOCKET && message.find("imed out") != std::string::npos) {
      return {"timeout", message};
    }
    return {"unreachable", message};
  }
  if (is_duplicate_key(error.code)) return {"duplicate_key", message};
  // BSONObjectTooLarge (MongoDB 7+), and what 5.0 and 6.0 answer for an update that
  // grows a document too far: mongo.max_document_bytes is set too high.
  if (error.code == 10334 || error.code == 17419 || error.code == 17420) {
    return {"document_too_large", message};
  }
  if (error.domain == MONGOC_ERROR_WRITE_CONCERN || error.domain == MONGOC_ERROR_COLLECTION) {
    return {"write_error", message};
  }
  if (error.domain == MONGOC_ERROR_SERVER || error.domain == MONGOC_ERROR_QUERY ||
      error.domain == MONGOC_ERROR_CLIENT) {
    if (message.find("imed out") != std::string::npos) return {"timeout", message};
    return {"command_error", message};
  }
  return {"command_error", message};
}

// A client popped from the pool, pushed back when the lease ends.
class ClientLease {
 public:
  explicit ClientLease(mongoc_client_pool_t* pool)
      : pool_(pool), client_(mongoc_client_pool_pop(pool)) {}
  ~ClientLease() { mongoc_client_pool_push(pool_, client_); }
  ClientLease(const ClientLease&) = delete;
  ClientLease& operator=(const ClientLease&) = delete;
  mongoc_client_t* get() const { return client_; }

 private:
  mongoc_client_pool_t* pool_;
  mongoc_client_t* client_;
};

class Collection {
 public:
  Collection(mongoc_client_t* client, const std::string& database, const std::string& name)
      : collection_(mongoc_client_get_collection(client, database.c_str(), name.c_str())) {}
  ~Collection() { mongoc_collection_destroy(collection_); }
  Collection(const Collection&) = delete;
  Collection& operator=(const Collection&) = delete;
  mongoc_collection_t* get() const { return collection_; }

 private:
  mongoc_collection_t* collection_;
};

class DriverConnection final : public MongoConnection {
 public:
  DriverConnection(mongoc_uri_t* uri, mongoc_client_pool_t* pool, std::string database)
      : uri_(uri), pool_(pool), database_(std::move(database)) {}
  ~DriverConnection() override {
    mongoc_client_pool_destroy(pool_);
    mongoc_uri_destroy(uri_);
  }

  std::optional<MongoError> create_indexes() override {
    ClientLease client(pool_);
    mongoc_database_t* db = mongoc_client_get_database(client.get(), database_.c_str());
    std::optional<MongoError> failure;
    for (const auto& [collection, indexes] : index_specs()) {
      auto command = to_bson({{"createIndexes", collection}, {"indexes", indexes}});
      if (!command.is_ok()) return MongoError{"invalid", command.status().message()};
      bson_t reply;
      bson_error_t error;
      const bool ok = mongoc_database_write_command_with_opts(db, command.value().get(), nullptr,
                                                              &reply, &error);
      bson_destroy(&reply);
      if (!ok) {
        failure = classify(error);
        break;
      }
    }
    mongoc_database_destroy(db);
    return failure;
  }

  std::optional<MongoError> write(const std::vector<Write>& writes) override {
    if (writes.empty()) return std::nullopt;
    ClientLease client(pool_);
    std::size_t begin = 0;
    while (begin < writes.size()) {
      std::size_t end = begin + 1;
      while (end < writes.size() && writes[end].collection == writes[begin].collection)
        ++end;
      if (auto failed = write_run(client.get(), writes, begin, end)) return failed;
      begin = end;
    }
    return std::nullopt;
  }

  Result<std::optional<nlohmann::json>> find_by_id(const std::string& collection,
                                                   const std::string& id,
                                                   int max_time_ms) override {
    auto filter = to_bson({{"_id", id}});
    auto opts = to_bson({{"limit", 1}, {"maxTimeMS", max_time_ms}});
    if (!filter.is_ok()) return filter.status();
    if (!opts.is_ok()) return opts.status();
    ClientLease client(pool_);
    Collection coll(client.get(), database_, collection);
    mongoc_cursor_t* cursor = mongoc_collection_find_with_opts(coll.get(), filter.value().get(),
                                                               opts.value().get(), nullptr);
    const bson_t* doc = nullptr;
    std::optional<nlohmann::json> found;
    if (mongoc_cursor_next(cursor, &doc)) {
      char* text = bson_as_relaxed_extended_json(doc, nullptr);
      found = nlohmann::json::parse(text, nullptr, false);
      bson_free(text);
    }
    bson_error_t error;
    const bool failed = mongoc_cursor_error(cursor, &error);
    mongoc_cursor_destroy(cursor);
    if (failed) {
      return Status::error(ErrorCode::internal, "mongo: " + classify(error).message);
    }
    if (found && found->is_discarded()) found.reset();
    return found;
  }

  std::optional<MongoError> ping() override {
    ClientLease client(pool_);
    auto command = to_bson({{"ping", 1}});
    bson_error_t error;
    const bool ok = mongoc_client_command_simple(client.get(), "admin", command.value().get(),
                                                 nullptr, nullptr, &error);
    if (!ok) return classify(error);
    return std::nullopt;
  }

 private:
  std::optional<MongoError> write_run(mongoc_client_t* client, const std::vector<Write>& writes,
                                      std::size_t begin, std::size_t end) {
    Collection coll(client, database_, writes[begin].collection);
    auto ordered = to_bson({{"ordered", true}});
    auto upsert = to_bson({{"upsert", true}});
    mongoc_bulk_operation_t* bulk =
        mongoc_collection_create_bulk_operation_with_opts(coll.get(), ordered.value().get());
    std::optional<MongoError> failure;
    for (std::size_t i = begin; i < end && !failure; ++i) {
      const Write& w = writes[i];
      auto selector = to_bson(w.filter);
      if (!selector.is_ok()) {
        failure = MongoError{"invalid", selector.status().message()};
        break;
      }
      bson_error_t error;
      bool added = false;
      if (w.kind == Write::Kind::delete_many) {
        added = mongoc_bulk_operation_remove_many_with_opts(bulk, selector.value().get(), nullptr,
                                                            &error);
      } else {
        auto update = to_bson(w.update);
        if (!update.is_ok()) {
          failure = MongoError{"invalid", update.status().message()};
          break;
        }
        added = mongoc_bulk_operation_update_one_with_opts(
            bulk, selector.value().get(), update.value().get(),
            w.upsert ? upsert.value().get() : nullptr, &error);
      }
      if (!added) failure = MongoError{"invalid", error.message};
    }
    if (!failure) {
      bson_t reply;
      bson_error_t error;
      if (mongoc_bulk_operation_execute(bulk, &reply, &error) == 0) failure = classify(error);
      bson_destroy(&reply);
    }
    mongoc_bulk_operation_destroy(bulk);
    return failure;
  }

  mongoc_uri_t* uri_;
  mongoc_client_pool_t* pool_;
  std::string database_;
};

Result<mongoc_uri_t*> parse_uri(const std::string& text) {
  init_driver();
  bson_error_t error;
  mongoc_uri_t* uri = mongoc_uri_new_with_error(text.c_str(), &error);
  if (uri == nullptr) {
    return Status::error(ErrorCode::bad_request,
                         std::string("mongo.uri is not a valid MongoDB URI: ") + error.message);
  }
  return uri;
}

}  // namespace

Result<std::unique_ptr<MongoConnection>> make_mongo_connection(const std::string& text,
                                                               const std::string& database,
                                                               std::optional<int> bound_ms) {
  auto parsed = parse_uri(text);
  if (!parsed.is_ok()) return parsed.status();
  mongoc_uri_t* uri = parsed.value();
  struct Default {
    const char* option;
    int32_t value;
  };
  for (const Default d :
       {Default{MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 5000},
        Default{MONGOC_URI_CONNECTTIMEOUTMS, 5000}, Default{MONGOC_URI_SOCKETTIMEOUTMS, 15000}}) {
    if (bound_ms) {
      mongoc_uri_set_option_as_int32(uri, d.option, *bound_ms);
    } else if (!mongoc_uri_has_option(uri, d.option)) {
      mongoc_uri_set_option_as_int32(uri, d.option, d.value);
    }
  }
  if (mongoc_uri_get_appname(uri) == nullptr) mongoc_uri_set_appname(uri, "ticketaid");
  bson_error_t error;
  mongoc_client_pool_t* pool = mongoc_client_pool_new_with_error(uri, &error);
  if (pool == nullptr) {
    mongoc_uri_destroy(uri);
    return Status::error(ErrorCode::bad_request,
                         std::string("mongo.uri: cannot make a client pool: ") + error.message);
  }
  mongoc_client_pool_set_error_api(pool, MONGOC_ERROR_API_VERSION_2);
  return std::unique_ptr<MongoConnection>(std::make_unique<DriverConnection>(uri, pool, database));
}

Result<std::string> mongo_target(const std::string& text, const std::string& database) {
  auto parsed = parse_uri(text);
  if (!parsed.is_ok()) return parsed.status();
  std::string target;
  for (const mongoc_host_list_t* h = mongoc_uri_get_hosts(parsed.value()); h != nullptr;
       h = h->next) {
    if (!target.empty()) target += ',';
    target += h->host_and_port;
  }
  if (target.empty()) {
    if (const char* srv = mongoc_uri_get_srv_hostname(parsed.value())) target = srv;
  }
  mongoc_uri_destroy(parsed.value());
  return target + "/" + database;
}

}  // namespace ticketaid::mirror
