// RAII wrappers over the SQLite C API: connections, statements, the writer thread
// and the reader pool. Thread-safety: see sqlite_db.h.
#include "store/sqlite_db.h"

#include <climits>

namespace ticketaid::sqlite {

Status error_status(sqlite3* db, int rc, std::string_view what) {
  std::string message = "sqlite: ";
  message += what;
  message += ": ";
  // sqlite3_errmsg describes the most recent failure on db; fall back to the
  // generic text of rc when there is no handle (e.g. open ran out of memory).
  message += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  message += " (code " + std::to_string(rc) + ")";
  return Status::error(ErrorCode::internal, std::move(message));
}

// --- Statement ---

Statement& Statement::bind(int index, std::string_view text) {
  // SQLITE_TRANSIENT: SQLite copies the text, so the caller's buffer may go away
  // while the statement sits in the cache.
  int rc =
      sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Statement& Statement::bind(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Statement& Statement::bind(int index, std::optional<int64_t> value) {
  return value ? bind(index, *value) : bind_null(index);
}

Statement& Statement::bind_null(int index) {
  int rc = sqlite3_bind_null(stmt_, index);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Result<bool> Statement::step() {
  if (bind_rc_ != SQLITE_OK) return error_status(db_, bind_rc_, "bind");
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return error_status(db_, rc, "step");
}

Status Statement::run() {
  for (;;) {
    Result<bool> row = step();
    if (!row.is_ok()) return row.status();
    if (!row.value()) return Status::ok();
  }
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_rc_ = SQLITE_OK;
}

bool Statement::is_null(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

int64_t Statement::int64(int column) const {
  return sqlite3_column_int64(stmt_, column);
}

std::optional<int64_t> Statement::optional_int64(int column) const {
  if (is_null(column)) return std::nullopt;
  return int64(column);
}

std::string Statement::text(int column) const {
  const auto* data = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  if (data == nullptr) return {};
  return std::string(data, static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
}

// --- Connection ---

Result<std::unique_ptr<Connection>> Connection::open(const std::string& path, int flags,
                                                     int busy_timeout_ms) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Status status = error_status(db, rc, "open " + path);
    sqlite3_close_v2(db);  // a handle is returned even on most failures
    return status;
  }
  std::unique_ptr<Connection> connection(new Connection(db, path));
  sqlite3_extended_result_codes(db, 1);
  rc = sqlite3_busy_timeout(db, busy_timeout_ms);
  if (rc != SQLITE_OK) return error_status(db, rc, "busy_timeout on " + path);
  return connection;
}

Connection::~Connection() {
  statements_.clear();  // finalize before closing
  sqlite3_close_v2(db_);
}

Status Connection::exec(std::string_view sql) {
  std::string text(sql);
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return error_status(db_, rc, text);
  return Status::ok();
}

Result<std::string> Connection::query_text(std::string_view sql) {
  Result<StatementLease> statement = prepare(sql);
  if (!statement.is_ok()) return statement.status();
  Result<bool> row = (*statement.value()).step();
  if (!row.is_ok()) return row.status();
  if (!row.value()) return std::string();
  return (*statement.value()).text(0);
}

Result<StatementLease> Connection::prepare(std::string_view sql) {
  auto found = statements_.find(sql);
  if (found != statements_.end()) return StatementLease(found->second.get());
  if (sql.size() > static_cast<size_t>(INT_MAX)) {
    return Status::error(ErrorCode::internal, "sqlite: statement too long");
  }
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) return error_status(db_, rc, "prepare " + std::string(sql));
  auto statement = std::make_unique<Statement>(db_, stmt);
  Statement* raw = statement.get();
  statements_.emplace(std::string(sql), std::move(statement));
  return StatementLease(raw);
}

void Connection::rollback() {
  // Some errors (SQLITE_FULL, SQLITE_IOERR, ...) roll the transaction back already.
  if (sqlite3_get_autocommit(db_) == 0) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

// --- Writer ---

Writer::Writer(std::unique_ptr<Connection> connection)
    : connection_(std::move(connection)), thread_([this] { loop(); }) {}

Writer::~Writer() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

Status Writer::run(std::function<void(Connection&)> job) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> finished = done->get_future();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return Status::error(ErrorCode::internal, "store: closing, write refused");
    jobs_.push_back(Job{std::move(job), std::move(done)});
  }
  wake_.notify_one();
  finished.wait();
  return Status::ok();
}

void Writer::loop() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, and every queued job has run
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    try {
      job.fn(*connection_);
    } catch (...) {
      // The caller sees an empty result and reports an internal error.
      connection_->rollback();
    }
    job.done->set_value();
  }
}

// --- ReaderPool ---

ReaderPool::ReaderPool(std::vector<std::unique_ptr<Connection>> connections)
    : connections_(std::move(connections)) {
  for (const auto& connection : connections_)
    idle_.push_back(connection.get());
}

ReaderPool::Lease ReaderPool::acquire() {
  std::unique_lock<std::mutex> lock(mutex_);
  available_.wait(lock, [this] { return !idle_.empty(); });
  Connection* connection = idle_.back();
  idle_.pop_back();
  return Lease(this, connection);
}

void ReaderPool::release(Connection* connection) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    idle_.push_back(connection);
  }
  available_.notify_one();
}

}  // namespace ticketaid::sqlite
