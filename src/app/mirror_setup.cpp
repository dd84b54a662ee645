// The mongo.* settings to a Mirror (see mirror_setup.h).
#include "app/mirror_setup.h"

#ifdef TICKETAID_WITH_MONGO
#include "sync/mongo_connection.h"
#include "sync/mongo_mirror.h"
#endif

namespace ticketaid {

bool mirror_built() {
#ifdef TICKETAID_WITH_MONGO
  return true;
#else
  return false;
#endif
}

Result<std::string> mirror_target(const Settings& settings) {
  if (settings.mongo_uri.empty()) return std::string();
#ifdef TICKETAID_WITH_MONGO
  return mongo_mirror_target(settings);
#else
  return Status::error(ErrorCode::bad_request,
                       "mongo.uri is set, but this ticketaid was built without the MongoDB "
                       "mirror (libmongoc-dev was not found when it was built)");
#endif
}

Result<std::unique_ptr<Mirror>> make_mirror(const Settings& settings, Outbox& outbox,
                                            const std::string& target) {
  if (target.empty()) return std::unique_ptr<Mirror>();
#ifdef TICKETAID_WITH_MONGO
  return make_mongo_mirror(settings, outbox, target);
#else
  (void)outbox;
  return Status::error(ErrorCode::bad_request,
                       "this ticketaid was built without the MongoDB mirror");
#endif
}

Status probe_mirror(const Settings& settings) {
#ifdef TICKETAID_WITH_MONGO
  auto connection = mirror::make_mongo_connection(settings.mongo_uri, settings.mongo_database);
  if (!connection.is_ok()) return connection.status();
  if (auto failed = connection.value()->ping()) {
    return Status::error(ErrorCode::internal, failed->kind + ": " + failed->message);
  }
  return Status::ok();
#else
  return mirror_target(settings).status();
#endif
}

}  // namespace ticketaid
