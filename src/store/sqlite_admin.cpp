// Administration of a database file from outside the daemon: the online backup
// (`ticketaid backup`) and the checks of `ticketaid doctor`. Both open their own
// connections and may run while the daemon serves the same file.
#include <filesystem>

#include "store/migrations.h"
#include "store/sqlite_db.h"
#include "store/store.h"

namespace ticketaid {
namespace {

Status sqlite_error(sqlite3* db, const std::string& what) {
  return Status::error(ErrorCode::internal, what + ": " + sqlite3_errmsg(db));
}

}  // namespace

Status backup_sqlite_database(const std::string& source_path, const std::string& dest_path) {
  std::error_code ec;
  if (!std::filesystem::exists(source_path, ec)) {
    return Status::error(ErrorCode::not_found, "no database at " + source_path);
  }
  if (std::filesystem::exists(dest_path, ec)) {
    return Status::error(ErrorCode::bad_request, dest_path + " exists; name a new file");
  }
  auto source = sqlite::Connection::open(source_path, SQLITE_OPEN_READONLY, 5000);
  if (!source.is_ok()) return source.status();
  auto dest = sqlite::Connection::open(dest_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 5000);
  if (!dest.is_ok()) return dest.status();

  sqlite3_backup* backup =
      sqlite3_backup_init(dest.value()->handle(), "main", source.value()->handle(), "main");
  if (backup == nullptr) return sqlite_error(dest.value()->handle(), "backup");
  // All pages in one step: the copy is one consistent snapshot even while the daemon
  // commits (a WAL reader sees the database as of the step's start).
  int rc = sqlite3_backup_step(backup, -1);
  sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE) {
    Status failed =
        Status::error(ErrorCode::internal, std::string("backup: ") + sqlite3_errstr(rc));
    std::filesystem::remove(dest_path, ec);
    return failed;
  }
  // The copy is a standalone file in rollback-journal mode until the daemon opens it.
  if (Status s = dest.value()->exec("PRAGMA journal_mode = DELETE"); !s) return s;
  return Status::ok();
}

Result<DatabaseCheck> check_sqlite_database(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return Status::error(ErrorCode::not_found, "no database at " + path);
  }
  auto db = sqlite::Connection::open(path, SQLITE_OPEN_READONLY, 5000);
  if (!db.is_ok()) return db.status();
  DatabaseCheck check;
  auto version = db.value()->query_text("PRAGMA user_version");
  if (!version.is_ok()) return version.status();
  check.schema_version = std::stoi(version.value().empty() ? "0" : version.value());
  auto integrity = db.value()->query_text("PRAGMA quick_check(5)");
  if (!integrity.is_ok()) return integrity.status();
  check.integrity = integrity.value();
  if (check.schema_version > 0) {
    auto tickets = db.value()->query_text(
        "SELECT count(DISTINCT ticket_id) FROM conversations WHERE kind = 'ticket'");
    if (!tickets.is_ok()) return tickets.status();
    check.tickets = std::stoll(tickets.value().empty() ? "0" : tickets.value());
  }
  if (check.schema_version >= 3) {
    auto target = db.value()->query_text("SELECT target FROM mirror_state WHERE id = 1");
    auto depth = db.value()->query_text("SELECT count(*) FROM mirror_outbox");
    auto oldest = db.value()->query_text("SELECT coalesce(min(created_at), 0) FROM mirror_outbox");
    if (!target.is_ok()) return target.status();
    if (!depth.is_ok()) return depth.status();
    if (!oldest.is_ok()) return oldest.status();
    check.mirror_target = target.value();
    check.outbox_depth = std::stoll(depth.value().empty() ? "0" : depth.value());
    check.outbox_oldest_ms = std::stoll(oldest.value().empty() ? "0" : oldest.value());
  }
  return check;
}

}  // namespace ticketaid
