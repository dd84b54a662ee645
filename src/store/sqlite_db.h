// Thin RAII wrappers over the SQLite C API, private to src/store/.
//
// Connection owns one sqlite3 handle and a cache of prepared statements; Statement
// owns one sqlite3_stmt with typed bind and column helpers; every SQLite error is
// turned into a Status (ErrorCode::internal) whose message carries sqlite3_errmsg.
// Writer runs write jobs, each one a BEGIN IMMEDIATE transaction, on the single
// thread that owns the write connection. ReaderPool lends read-only connections.
// query_one / query_all turn rows into values; in_read_snapshot makes several
// reads see one snapshot.
//
// Thread-safety: a Connection and its statements are used by one thread at a time
// (they are opened with SQLITE_OPEN_NOMUTEX); Writer and ReaderPool are what make
// that so. Writer::transact and ReaderPool::acquire may be called from any thread.
#pragma once

#include <sqlite3.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "util/status.h"

namespace ticketaid::sqlite {

// "sqlite: WHAT: <sqlite3_errmsg> (code N)" as an internal error.
Status error_status(sqlite3* db, int rc, std::string_view what);

// One prepared statement. Parameters are 1-based, columns 0-based. A bind error is
// remembered and reported by the next step().
class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int index, std::string_view text);
  Statement& bind(int index, int64_t value);
  Statement& bind(int index, std::optional<int64_t> value);
  Statement& bind_null(int index);

  // Advances one row: true when a row is ready, false when the statement is done.
  Result<bool> step();
  // Runs a statement that returns no rows to completion.
  Status run();
  // Clears the bindings and rewinds, ready for reuse.
  void reset();

  bool is_null(int column) const;
  int64_t int64(int column) const;
  std::optional<int64_t> optional_int64(int column) const;
  std::string text(int column) const;  // "" for NULL

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  int bind_rc_ = SQLITE_OK;
};

// A statement borrowed from a connection's cache; reset when the lease ends.
class StatementLease {
 public:
  explicit StatementLease(Statement* statement) : statement_(statement) {}
  StatementLease(StatementLease&& other) noexcept
      : statement_(std::exchange(other.statement_, nullptr)) {}
  StatementLease& operator=(StatementLease&&) = delete;
  ~StatementLease() {
    if (statement_ != nullptr) statement_->reset();
  }
  Statement* operator->() const { return statement_; }
  Statement& operator*() const { return *statement_; }

 private:
  Statement* statement_;
};

class Connection {
 public:
  // Opens path with the given SQLITE_OPEN_* flags (NOMUTEX is added) and sets the
  // busy timeout and extended result codes.
  static Result<std::unique_ptr<Connection>> open(const std::string& path, int flags,
                                                  int busy_timeout_ms);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  sqlite3* handle() const { return db_; }
  const std::string& path() const { return path_; }

  // Runs one or more statements that return no rows (DDL, PRAGMA, BEGIN, ...).
  Status exec(std::string_view sql);
  // The first column of the first row of sql, as text ("" when there is no row).
  Result<std::string> query_text(std::string_view sql);
  // A prepared statement for sql, compiled once per connection and then reused.
  Result<StatementLease> prepare(std::string_view sql);
  // Rolls back the open transaction, if any; errors are ignored (nothing to do).
  void rollback();

 private:
  Connection(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  std::string path_;
  // Looked up by string_view, so that a cache hit allocates nothing.
  struct SqlHash {
    using is_transparent = void;
    size_t operator()(std::string_view sql) const { return std::hash<std::string_view>{}(sql); }
  };
  std::unordered_map<std::string, std::unique_ptr<Statement>, SqlHash, std::equal_to<>> statements_;
};

// Every row of sql, its parameters set by bind(Statement&), each made by read(row).
template <class T, class Bind, class Read>
Result<std::vector<T>> query_all(Connection& db, const char* sql, Bind&& bind, Read&& read) {
  Result<StatementLease> query = db.prepare(sql);
  if (!query.is_ok()) return query.status();
  Statement& q = *query.value();
  bind(q);
  std::vector<T> rows;
  for (;;) {
    Result<bool> row = q.step();
    if (!row.is_ok()) return row.status();
    if (!row.value()) return rows;
    rows.push_back(read(q));
  }
}

// The first row of sql made by read(row), or nullopt when there is none.
template <class T, class Bind, class Read>
Result<std::optional<T>> query_one(Connection& db, const char* sql, Bind&& bind, Read&& read) {
  Result<StatementLease> query = db.prepare(sql);
  if (!query.is_ok()) return query.status();
  Statement& q = *query.value();
  bind(q);
  Result<bool> row = q.step();
  if (!row.is_ok()) return row.status();
  if (!row.value()) return std::optional<T>();
  return std::optional<T>(read(q));
}

// Runs fn(db) between BEGIN IMMEDIATE and COMMIT; rolls back when fn fails (its
// result is not ok), throws, or the commit fails. R is Status or Result<T>.
template <class R, class F>
R run_in_transaction(Connection& db, F&& fn) {
  if (Status begun = db.exec("BEGIN IMMEDIATE"); !begun.is_ok()) return R(begun);
  std::optional<R> result;
  try {
    result.emplace(fn(db));
  } catch (const std::exception& e) {
    result.emplace(
        Status::error(ErrorCode::internal, std::string("store: write failed: ") + e.what()));
  } catch (...) {
    result.emplace(Status::error(ErrorCode::internal, "store: write failed"));
  }
  if (!result->is_ok()) {
    db.rollback();
    return std::move(*result);
  }
  if (Status committed = db.exec("COMMIT"); !committed.is_ok()) {
    db.rollback();
    return R(committed);
  }
  return std::move(*result);
}

// Runs fn(db) inside one read transaction, so that every statement it runs sees
// the same snapshot of the committed data; the transaction ends (it wrote nothing)
// however fn returns or throws. R is Status or Result<T>.
template <class R, class F>
R in_read_snapshot(Connection& db, F&& fn) {
  if (Status begun = db.exec("BEGIN"); !begun.is_ok()) return R(begun);
  struct EndTransaction {
    Connection& db;
    ~EndTransaction() { db.rollback(); }
  } end{db};
  return fn(db);
}

// The one thread that writes. It owns the write connection; jobs run in the order
// they were submitted. Destruction finishes the queued jobs, then stops the thread
// and closes the connection.
class Writer {
 public:
  explicit Writer(std::unique_ptr<Connection> connection);
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Runs fn(Connection&) in a transaction on the writer thread and waits for it.
  // Runs fn(Connection&) on the writer thread outside any transaction (for pragmas
  // such as wal_checkpoint, which a transaction forbids) and waits for it.
  Status outside_transaction(std::function<Status(Connection&)> fn) {
    Status result = Status::error(ErrorCode::internal, "store: write job failed");
    Status submitted = run([&](Connection& db) { result = fn(db); });
    return submitted.is_ok() ? result : submitted;
  }

  template <class R, class F>
  R transact(F fn) {
    std::optional<R> result;
    Status submitted = run([&](Connection& db) { result.emplace(run_in_transaction<R>(db, fn)); });
    if (!submitted.is_ok()) return R(submitted);
    if (!result) return R(Status::error(ErrorCode::internal, "store: write job failed"));
    return std::move(*result);
  }

 private:
  struct Job {
    std::function<void(Connection&)> fn;
    // Shared so that the writer may finish set_value() after the caller has woken.
    std::shared_ptr<std::promise<void>> done;
  };
  // Queues job and blocks until the writer thread has run it.
  Status run(std::function<void(Connection&)> job);
  void loop();

  std::unique_ptr<Connection> connection_;  // used by thread_ only once it runs
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;   // guarded by mutex_
  bool stopping_ = false;  // guarded by mutex_
  std::thread thread_;
};

// Read-only connections lent to one caller at a time; acquire() waits while all of
// them are lent.
class ReaderPool {
 public:
  explicit ReaderPool(std::vector<std::unique_ptr<Connection>> connections);

  class Lease {
   public:
    Lease(ReaderPool* pool, Connection* connection) : pool_(pool), connection_(connection) {}
    Lease(Lease&& other) noexcept
        : pool_(other.pool_), connection_(std::exchange(other.connection_, nullptr)) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (connection_ != nullptr) pool_->release(connection_);
    }
    Connection& operator*() const { return *connection_; }
    Connection* operator->() const { return connection_; }

   private:
    ReaderPool* pool_;
    Connection* connection_;
  };

  Lease acquire();

 private:
  void release(Connection* connection);

  std::vector<std::unique_ptr<Connection>> connections_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<Connection*> idle_;  // guarded by mutex_
};

}  // namespace ticketaid::sqlite
