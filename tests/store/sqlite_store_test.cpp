// Unit tests of the SQLite store against real database files in temporary
// directories. A second, plain sqlite3 connection inspects what the store wrote, and
// a counting VFS shows which files the store syncs. Tests run one at a time (the
// counting VFS is process-wide while installed); the concurrency test spawns its
// own threads.
#include <sqlite3.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "store/sqlite_fixture.h"
#include "store/store.h"

namespace ticketaid {
namespace {

namespace fs = std::filesystem;

using store_test::RawDb;

class SqliteStoreTest : public store_test::SqliteFileTest {
 protected:
  // Begins and completes one answer; returns the revision.
  int answer(Store& store, const std::string& ticket, const std::string& prompt,
             const std::string& response) {
    auto begun = store.begin_ticket_generation(ticket, prompt, "llama3.2");
    EXPECT_TRUE(begun.is_ok()) << begun.status().to_string();
    if (!begun.is_ok()) return 0;
    GenerationStats stats{"llama3.2", 10, 20, 300, "stop"};
    Status done = store.complete_ticket_generation(ticket, begun->revision, response, stats);
    EXPECT_TRUE(done.is_ok()) << done.to_string();
    return begun->revision;
  }

  TicketSession find(Store& store, const std::string& ticket) {
    auto found = store.find_ticket_session(ticket);
    EXPECT_TRUE(found.is_ok()) << found.status().to_string();
    EXPECT_TRUE(found.is_ok() && found.value().has_value()) << ticket;
    if (!found.is_ok() || !found.value()) return {};
    return *found.value();
  }
};

TEST(SessionStatusTest, NamesRoundTrip) {
  for (auto status : {SessionStatus::generating, SessionStatus::complete, SessionStatus::failed,
                      SessionStatus::interrupted, SessionStatus::cancelled}) {
    EXPECT_EQ(parse_session_status(to_string(status)), status);
  }
  EXPECT_EQ(to_string(SessionStatus::interrupted), "interrupted");
  EXPECT_FALSE(parse_session_status("done").has_value());
  EXPECT_FALSE(parse_session_status("").has_value());
}

TEST_F(SqliteStoreTest, OpenCreatesSchema) {
  open();
  RawDb raw(options_.path);
  EXPECT_EQ(raw.text("PRAGMA user_version"), std::to_string(sqlite_schema_version()));
  EXPECT_GE(sqlite_schema_version(), 1);
  EXPECT_EQ(raw.text("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN "
                     "('conversations', 'messages')"),
            "2");
  EXPECT_EQ(raw.text("SELECT count(*) FROM pragma_index_list('conversations') WHERE \"unique\""),
            "2");  // primary key, (ticket_id, revision)
}

TEST_F(SqliteStoreTest, ReopenIsIdempotent) {
  open();
  answer(*store_, "T-1", "printer on fire", "call facilities");
  store_.reset();
  RawDb raw(options_.path);
  std::string schema = raw.text("SELECT group_concat(sql, ';') FROM sqlite_schema");
  open();
  open();
  EXPECT_EQ(raw.text("PRAGMA user_version"), std::to_string(sqlite_schema_version()));
  EXPECT_EQ(raw.text("SELECT group_concat(sql, ';') FROM sqlite_schema"), schema);
  EXPECT_EQ(find(*store_, "T-1").response, "call facilities");
}

TEST_F(SqliteStoreTest, RefusesNewerSchemaVersion) {
  open();
  store_.reset();
  int newer = sqlite_schema_version() + 6;
  RawDb(options_.path).exec("PRAGMA user_version = " + std::to_string(newer));
  auto opened = open_sqlite_store(options_);
  ASSERT_FALSE(opened.is_ok());
  EXPECT_NE(opened.status().message().find("database schema version " + std::to_string(newer) +
                                           " is newer than this ticketaid (knows up to " +
                                           std::to_string(sqlite_schema_version()) +
                                           "); upgrade ticketaid or restore a backup"),
            std::string::npos)
      << opened.status().message();
  EXPECT_NE(opened.status().message().find(options_.path), std::string::npos);
}

TEST_F(SqliteStoreTest, RefusesDatabaseItDidNotCreate) {
  RawDb(options_.path).exec("CREATE TABLE invoices (id INTEGER PRIMARY KEY)");
  auto opened = open_sqlite_store(options_);
  ASSERT_FALSE(opened.is_ok());
  EXPECT_NE(opened.status().message().find("did not create"), std::string::npos)
      << opened.status().message();
  EXPECT_EQ(RawDb(options_.path).text("PRAGMA journal_mode"), "delete");  // left untouched
}

TEST_F(SqliteStoreTest, RefusesFileThatIsNotADatabase) {
  { std::ofstream(options_.path) << "this is not a database, just some text\n"; }
  auto opened = open_sqlite_store(options_);
  ASSERT_FALSE(opened.is_ok());
  EXPECT_EQ(opened.status().code(), ErrorCode::internal);
  EXPECT_NE(opened.status().message().find("not a database"), std::string::npos)
      << opened.status().message();
}

TEST_F(SqliteStoreTest, RefusesBadOptions) {
  options_.synchronous = "off";
  EXPECT_EQ(open_sqlite_store(options_).status().code(), ErrorCode::bad_request);
  options_.synchronous = "normal";
  options_.reader_connections = 0;
  EXPECT_EQ(open_sqlite_store(options_).status().code(), ErrorCode::bad_request);
  options_.reader_connections = 1;
  options_.path = "";
  EXPECT_EQ(open_sqlite_store(options_).status().code(), ErrorCode::bad_request);
}

TEST_F(SqliteStoreTest, FindsNothingForUnknownTicket) {
  auto found = open().find_ticket_session("T-404");
  ASSERT_TRUE(found.is_ok());
  EXPECT_FALSE(found.value().has_value());
  auto revisions = store_->list_ticket_revisions("T-404");
  ASSERT_TRUE(revisions.is_ok());
  EXPECT_TRUE(revisions.value().empty());
}

TEST_F(SqliteStoreTest, BeginCompleteFind) {
  Store& store = open();
  auto begun = store.begin_ticket_generation("T-1", "VPN drops every hour", "llama3.2");
  ASSERT_TRUE(begun.is_ok()) << begun.status().to_string();
  EXPECT_EQ(begun->revision, 1);
  EXPECT_EQ(begun->status, SessionStatus::generating);
  EXPECT_EQ(begun->prompt, "VPN drops every hour");
  EXPECT_EQ(begun->stats.model, "llama3.2");
  EXPECT_EQ(begun->conversation_id.size(), 32u);
  EXPECT_GT(begun->created_at_ms, 0);

  TicketSession generating = find(store, "T-1");
  EXPECT_EQ(generating.status, SessionStatus::generating);
  EXPECT_TRUE(generating.response.empty());

  GenerationStats stats{"llama3.2:3b", 42, 128, 1500, "stop"};
  ASSERT_TRUE(store.complete_ticket_generation("T-1", 1, "Renew the DHCP lease.", stats).is_ok());

  TicketSession done = find(store, "T-1");
  EXPECT_EQ(done.ticket_id, "T-1");
  EXPECT_EQ(done.conversation_id, begun->conversation_id);
  EXPECT_EQ(done.revision, 1);
  EXPECT_EQ(done.status, SessionStatus::complete);
  EXPECT_EQ(done.prompt, "VPN drops every hour");
  EXPECT_EQ(done.response, "Renew the DHCP lease.");
  EXPECT_EQ(done.stats.model, "llama3.2:3b");
  EXPECT_EQ(done.stats.prompt_tokens, 42);
  EXPECT_EQ(done.stats.response_tokens, 128);
  EXPECT_EQ(done.stats.duration_ms, 1500);
  EXPECT_EQ(done.stats.done_reason, "stop");
  EXPECT_EQ(done.revision_count, 0);
  EXPECT_TRUE(done.failure_reason.empty());
  EXPECT_EQ(done.created_at_ms, begun->created_at_ms);
  EXPECT_GE(done.updated_at_ms, done.created_at_ms);

  RawDb raw(options_.path);
  EXPECT_EQ(raw.text("SELECT group_concat(seq || ':' || role, ',') FROM messages"),
            "0:user,1:assistant");
  EXPECT_EQ(raw.text("SELECT response_tokens FROM messages WHERE seq = 1"), "128");
}

TEST_F(SqliteStoreTest, MissingStatsStayAbsent) {
  Store& store = open();
  ASSERT_TRUE(store.begin_ticket_generation("T-1", "body", "llama3.2").is_ok());
  ASSERT_TRUE(store.complete_ticket_generation("T-1", 1, "answer", GenerationStats{}).is_ok());
  TicketSession done = find(store, "T-1");
  EXPECT_EQ(done.stats.model, "llama3.2");  // the model asked, when none is reported
  EXPECT_FALSE(done.stats.prompt_tokens.has_value());
  EXPECT_FALSE(done.stats.response_tokens.has_value());
  EXPECT_FALSE(done.stats.duration_ms.has_value());
}

TEST_F(SqliteStoreTest, RegenerateKeepsEarlierRevisions) {
  Store& store = open();
  ASSERT_EQ(answer(store, "T-7", "body one", "answer one"), 1);

  auto second = store.begin_ticket_generation("T-7", "body two", "llama3.2");
  ASSERT_TRUE(second.is_ok());
  EXPECT_EQ(second->revision, 2);
  EXPECT_EQ(second->revision_count, 1);
  TicketSession current = find(store, "T-7");
  EXPECT_EQ(current.revision, 2);
  EXPECT_EQ(current.status, SessionStatus::generating);
  EXPECT_EQ(current.prompt, "body two");
  EXPECT_TRUE(current.response.empty());
  EXPECT_EQ(current.revision_count, 1);

  auto earlier = store.list_ticket_revisions("T-7");
  ASSERT_TRUE(earlier.is_ok());
  ASSERT_EQ(earlier.value().size(), 1u);
  EXPECT_EQ(earlier.value()[0].revision, 1);
  EXPECT_EQ(earlier.value()[0].prompt, "body one");
  EXPECT_EQ(earlier.value()[0].response, "answer one");
  EXPECT_EQ(earlier.value()[0].status, SessionStatus::complete);

  GenerationStats stats{"llama3.2", 1, 2, 3, "stop"};
  ASSERT_TRUE(store.complete_ticket_generation("T-7", 2, "answer two", stats).is_ok());
  ASSERT_EQ(answer(store, "T-7", "body three", "answer three"), 3);

  current = find(store, "T-7");
  EXPECT_EQ(current.response, "answer three");
  EXPECT_EQ(current.revision_count, 2);
  earlier = store.list_ticket_revisions("T-7");
  ASSERT_TRUE(earlier.is_ok());
  ASSERT_EQ(earlier.value().size(), 2u);
  EXPECT_EQ(earlier.value()[0].revision, 2);  // newest first
  EXPECT_EQ(earlier.value()[0].response, "answer two");
  EXPECT_EQ(earlier.value()[0].revision_count, 1);
  EXPECT_EQ(earlier.value()[1].revision, 1);
  EXPECT_EQ(earlier.value()[1].revision_count, 0);
  EXPECT_NE(earlier.value()[0].conversation_id, earlier.value()[1].conversation_id);
}

TEST_F(SqliteStoreTest, UnfinishedRevisionIsReusedAndReset) {
  Store& store = open();
  for (auto ending : {SessionStatus::failed, SessionStatus::cancelled, SessionStatus::interrupted,
                      SessionStatus::generating}) {
    std::string ticket = "T-" + std::string(to_string(ending));
    auto first = store.begin_ticket_generation(ticket, "old body", "llama3.2");
    ASSERT_TRUE(first.is_ok());
    if (ending != SessionStatus::generating) {
      ASSERT_TRUE(store.end_ticket_generation(ticket, 1, ending, "Ollama said no").is_ok());
      TicketSession ended = find(store, ticket);
      EXPECT_EQ(ended.status, ending);
      EXPECT_EQ(ended.failure_reason, "Ollama said no");
    }
    auto again = store.begin_ticket_generation(ticket, "new body", "mistral");
    ASSERT_TRUE(again.is_ok());
    EXPECT_EQ(again->revision, 1) << ticket;
    EXPECT_EQ(again->conversation_id, first->conversation_id);
    EXPECT_EQ(again->status, SessionStatus::generating);
    EXPECT_EQ(again->prompt, "new body");
    EXPECT_EQ(again->stats.model, "mistral");
    EXPECT_TRUE(again->failure_reason.empty());
    EXPECT_EQ(again->revision_count, 0);
    EXPECT_GE(again->updated_at_ms, first->updated_at_ms);
    auto revisions = store.list_ticket_revisions(ticket);
    ASSERT_TRUE(revisions.is_ok());
    EXPECT_TRUE(revisions.value().empty());
  }
  RawDb raw(options_.path);
  EXPECT_EQ(raw.text("SELECT count(*) FROM conversations"), "4");
  EXPECT_EQ(raw.text("SELECT count(*) FROM messages"), "4");  // one prompt each
}

TEST_F(SqliteStoreTest, ReuseDropsAStrayAnswerAndKeepsThePromptId) {
  Store& store = open();
  auto first = store.begin_ticket_generation("T-1", "old body", "llama3.2");
  ASSERT_TRUE(first.is_ok());
  ASSERT_TRUE(store.end_ticket_generation("T-1", 1, SessionStatus::failed, "boom").is_ok());
  RawDb raw(options_.path);
  std::string prompt_id = raw.text("SELECT id FROM messages WHERE seq = 0");
  raw.exec(
      "INSERT INTO messages (id, conversation_id, seq, role, content, created_at) "
      "VALUES ('stray', '" +
      first->conversation_id + "', 1, 'assistant', 'partial', 1)");
  ASSERT_TRUE(store.begin_ticket_generation("T-1", "new body", "llama3.2").is_ok());
  EXPECT_TRUE(find(store, "T-1").response.empty());
  EXPECT_EQ(raw.text("SELECT count(*) FROM messages"), "1");
  EXPECT_EQ(raw.text("SELECT id FROM messages WHERE seq = 0"), prompt_id);
}

TEST_F(SqliteStoreTest, CompleteAndEndNeedAGeneratingRevision) {
  Store& store = open();
  answer(store, "T-1", "body", "the answer");
  GenerationStats stats{"llama3.2", 1, 1, 1, "stop"};

  Status again = store.complete_ticket_generation("T-1", 1, "another answer", stats);
  EXPECT_EQ(again.code(), ErrorCode::bad_request) << again.to_string();
  EXPECT_EQ(store.complete_ticket_generation("T-1", 2, "x", stats).code(), ErrorCode::not_found);
  EXPECT_EQ(store.complete_ticket_generation("T-2", 1, "x", stats).code(), ErrorCode::not_found);
  EXPECT_EQ(store.end_ticket_generation("T-1", 1, SessionStatus::failed, "late").code(),
            ErrorCode::bad_request);
  EXPECT_EQ(store.end_ticket_generation("T-2", 1, SessionStatus::failed, "x").code(),
            ErrorCode::not_found);

  ASSERT_TRUE(store.begin_ticket_generation("T-3", "body", "llama3.2").is_ok());
  EXPECT_EQ(store.end_ticket_generation("T-3", 1, SessionStatus::complete, "").code(),
            ErrorCode::bad_request);
  ASSERT_TRUE(store.end_ticket_generation("T-3", 1, SessionStatus::cancelled, "left").is_ok());
  EXPECT_EQ(store.complete_ticket_generation("T-3", 1, "too late", stats).code(),
            ErrorCode::bad_request);

  TicketSession kept = find(store, "T-1");  // the failed calls changed nothing
  EXPECT_EQ(kept.status, SessionStatus::complete);
  EXPECT_EQ(kept.response, "the answer");
  EXPECT_EQ(find(store, "T-3").status, SessionStatus::cancelled);
}

TEST_F(SqliteStoreTest, ListTicketSessionsCurrentRevisionsWithTotal) {
  Store& store = open();
  answer(store, "T-1", "body", "answer");
  answer(store, "T-1", "body two", "answer two");  // one row for T-1: its current revision
  answer(store, "T-2", "body", "answer");
  ASSERT_TRUE(store.begin_ticket_generation("T-3", "body", "llama3.2").is_ok());
  RawDb raw(options_.path);
  raw.exec("UPDATE conversations SET updated_at = 3000 WHERE ticket_id = 'T-1' AND revision = 2");
  raw.exec("UPDATE conversations SET updated_at = 2000 WHERE ticket_id = 'T-2'");
  raw.exec("UPDATE conversations SET updated_at = 1000 WHERE ticket_id = 'T-3'");

  auto page = store.list_ticket_sessions(std::nullopt, 2, 0);
  ASSERT_TRUE(page.is_ok()) << page.status().to_string();
  EXPECT_EQ(page->total, 3);
  ASSERT_EQ(page->items.size(), 2u);
  EXPECT_EQ(page->items[0].ticket_id, "T-1");  // most recently updated first
  EXPECT_EQ(page->items[0].revision, 2);
  EXPECT_EQ(page->items[0].revision_count, 1);
  EXPECT_EQ(page->items[1].ticket_id, "T-2");
  auto rest = store.list_ticket_sessions(std::nullopt, 2, 2);
  ASSERT_TRUE(rest.is_ok());
  ASSERT_EQ(rest->items.size(), 1u);
  EXPECT_EQ(rest->items[0].ticket_id, "T-3");
  auto complete = store.list_ticket_sessions(SessionStatus::complete, 10, 0);
  ASSERT_TRUE(complete.is_ok());
  EXPECT_EQ(complete->total, 2);
  EXPECT_EQ(complete->items.size(), 2u);
  EXPECT_EQ(store.list_ticket_sessions(SessionStatus::failed, 10, 0)->total, 0);
}

TEST_F(SqliteStoreTest, MarkInterruptedAfterARestart) {
  Store& store = open();
  answer(store, "T-done", "body", "answer");
  ASSERT_TRUE(store.begin_ticket_generation("T-a", "body a", "llama3.2").is_ok());
  ASSERT_TRUE(store.begin_ticket_generation("T-b", "body b", "llama3.2").is_ok());
  ASSERT_TRUE(store.begin_ticket_generation("T-c", "body c", "llama3.2").is_ok());
  ASSERT_TRUE(store.end_ticket_generation("T-c", 1, SessionStatus::failed, "boom").is_ok());
  ASSERT_TRUE(store.begin_ticket_generation("T-done", "new body", "llama3.2").is_ok());

  Store& restarted = open();  // the daemon "died" with three sessions generating
  auto marked = restarted.mark_interrupted();
  ASSERT_TRUE(marked.is_ok());
  EXPECT_EQ(marked.value(), 3);
  for (const char* ticket : {"T-a", "T-b", "T-done"}) {
    TicketSession session = find(restarted, ticket);
    EXPECT_EQ(session.status, SessionStatus::interrupted) << ticket;
    EXPECT_EQ(session.failure_reason, "the daemon stopped during generation");
  }
  EXPECT_EQ(find(restarted, "T-c").status, SessionStatus::failed);
  EXPECT_EQ(find(restarted, "T-c").failure_reason, "boom");
  EXPECT_EQ(restarted.list_ticket_revisions("T-done").value().size(), 1u);
  EXPECT_EQ(restarted.mark_interrupted().value(), 0);

  auto retried = restarted.begin_ticket_generation("T-a", "body a", "llama3.2");
  ASSERT_TRUE(retried.is_ok());
  EXPECT_EQ(retried->revision, 1);
}

TEST_F(SqliteStoreTest, DataSurvivesCloseAndReopen) {
  open();
  answer(*store_, "T-1", "body one", "answer one");
  answer(*store_, "T-1", "body two", "answer two");
  std::string conversation = find(*store_, "T-1").conversation_id;
  store_.reset();
  EXPECT_FALSE(fs::exists(options_.path + "-wal"));  // checkpointed on close

  Store& reopened = open();
  TicketSession current = find(reopened, "T-1");
  EXPECT_EQ(current.revision, 2);
  EXPECT_EQ(current.conversation_id, conversation);
  EXPECT_EQ(current.response, "answer two");
  EXPECT_EQ(current.stats.prompt_tokens, 10);
  EXPECT_EQ(reopened.list_ticket_revisions("T-1").value().at(0).response, "answer one");
}

TEST_F(SqliteStoreTest, ReadsGoOnWhileAnotherProcessHoldsTheWriteLock) {
  options_.busy_timeout_ms = 50;
  Store& store = open();
  answer(store, "T-1", "body", "answer");
  RawDb other(options_.path);
  other.exec("BEGIN IMMEDIATE");

  EXPECT_EQ(find(store, "T-1").response, "answer");
  auto blocked = store.begin_ticket_generation("T-2", "body", "llama3.2");
  ASSERT_FALSE(blocked.is_ok());
  EXPECT_EQ(blocked.status().code(), ErrorCode::internal);
  EXPECT_NE(blocked.status().message().find("database is locked"), std::string::npos)
      << blocked.status().message();

  other.exec("COMMIT");
  EXPECT_TRUE(store.begin_ticket_generation("T-2", "body", "llama3.2").is_ok());
}

// A VFS that forwards to the default one and counts xSync calls on WAL files, so
// a test can see whether commits are made durable one by one.
class WalSyncCounter {
 public:
  WalSyncCounter() {
    base_ = sqlite3_vfs_find(nullptr);
    vfs_ = *base_;
    vfs_.zName = "ticketaid-test-counting";
    vfs_.szOsFile = static_cast<int>(sizeof(File)) + base_->szOsFile;
    vfs_.xOpen = &open_file;
    vfs_.pNext = nullptr;
    instance_ = this;
    sqlite3_vfs_register(&vfs_, 1);
  }
  ~WalSyncCounter() {
    sqlite3_vfs_register(base_, 1);
    sqlite3_vfs_unregister(&vfs_);
    instance_ = nullptr;
  }
  int wal_syncs() const { return wal_syncs_.load(); }
  void reset() { wal_syncs_ = 0; }

 private:
  struct File {
    sqlite3_file base;
    sqlite3_file* real;  // the base VFS's file, stored right after this struct
    bool is_wal;
  };
  static sqlite3_file* real(sqlite3_file* f) { return reinterpret_cast<File*>(f)->real; }

  static int open_file(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags,
                       int* out_flags) {
    auto* file = reinterpret_cast<File*>(f);
    file->real = reinterpret_cast<sqlite3_file*>(file + 1);
    file->is_wal = (flags & SQLITE_OPEN_WAL) != 0;
    file->base.pMethods = nullptr;
    sqlite3_vfs* base = instance_->base_;
    int rc = base->xOpen(base, name, file->real, flags, out_flags);
    if (file->real->pMethods != nullptr) file->base.pMethods = &kMethods;
    return rc;
  }
  static int sync(sqlite3_file* f, int flags) {
    if (reinterpret_cast<File*>(f)->is_wal) ++instance_->wal_syncs_;
    return real(f)->pMethods->xSync(real(f), flags);
  }

  static inline const sqlite3_io_methods kMethods = {
      3,
      [](sqlite3_file* f) { return real(f)->pMethods->xClose(real(f)); },
      [](sqlite3_file* f, void* b, int n, sqlite3_int64 o) {
        return real(f)->pMethods->xRead(real(f), b, n, o);
      },
      [](sqlite3_file* f, const void* b, int n, sqlite3_int64 o) {
        return real(f)->pMethods->xWrite(real(f), b, n, o);
      },
      [](sqlite3_file* f, sqlite3_int64 n) { return real(f)->pMethods->xTruncate(real(f), n); },
      &sync,
      [](sqlite3_file* f, sqlite3_int64* n) { return real(f)->pMethods->xFileSize(real(f), n); },
      [](sqlite3_file* f, int l) { return real(f)->pMethods->xLock(real(f), l); },
      [](sqlite3_file* f, int l) { return real(f)->pMethods->xUnlock(real(f), l); },
      [](sqlite3_file* f, int* r) { return real(f)->pMethods->xCheckReservedLock(real(f), r); },
      [](sqlite3_file* f, int op, void* a) {
        return real(f)->pMethods->xFileControl(real(f), op, a);
      },
      [](sqlite3_file* f) { return real(f)->pMethods->xSectorSize(real(f)); },
      [](sqlite3_file* f) { return real(f)->pMethods->xDeviceCharacteristics(real(f)); },
      [](sqlite3_file* f, int pg, int sz, int ext, void volatile** p) {
        return real(f)->pMethods->xShmMap(real(f), pg, sz, ext, p);
      },
      [](sqlite3_file* f, int o, int n, int fl) {
        return real(f)->pMethods->xShmLock(real(f), o, n, fl);
      },
      [](sqlite3_file* f) { real(f)->pMethods->xShmBarrier(real(f)); },
      [](sqlite3_file* f, int d) { return real(f)->pMethods->xShmUnmap(real(f), d); },
      [](sqlite3_file* f, sqlite3_int64 o, int n, void** p) {
        return real(f)->pMethods->xFetch(real(f), o, n, p);
      },
      [](sqlite3_file* f, sqlite3_int64 o, void* p) {
        return real(f)->pMethods->xUnfetch(real(f), o, p);
      },
  };

  static inline WalSyncCounter* instance_ = nullptr;
  sqlite3_vfs* base_;
  sqlite3_vfs vfs_;
  std::atomic<int> wal_syncs_{0};
};

TEST_F(SqliteStoreTest, UsesWalAndTheConfiguredSynchronousMode) {
  WalSyncCounter counter;
  constexpr int kCommits = 10;
  int syncs[2] = {0, 0};
  const char* modes[2] = {"full", "normal"};
  for (int m = 0; m < 2; ++m) {
    options_.synchronous = modes[m];
    Store& store = open();
    counter.reset();
    for (int i = 0; i < kCommits; ++i) {
      ASSERT_TRUE(store.begin_ticket_generation("T-" + std::to_string(i), "b", "m").is_ok());
    }
    syncs[m] = counter.wal_syncs();
    RawDb raw(options_.path);
    EXPECT_EQ(raw.text("PRAGMA journal_mode"), "wal");
    store_.reset();
  }
  // full: the WAL is synced at every commit; normal: only when a new WAL file
  // starts and at checkpoints (none here).
  EXPECT_GE(syncs[0], kCommits);
  EXPECT_LE(syncs[1], 1);
}

// Several threads work on their own tickets while another keeps reading them all;
// every row a reader sees must be one a writer could have committed.
TEST_F(SqliteStoreTest, ConcurrentTicketsStayConsistent) {
  Store& store = open();
  constexpr int kThreads = 4;
  constexpr int kTickets = 15;
  auto ticket_name = [](int t, int i) {
    return "T-" + std::to_string(t) + "-" + std::to_string(i);
  };
  std::atomic<int> failures{0};
  std::atomic<bool> writing{true};

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kTickets; ++i) {
        std::string ticket = ticket_name(t, i);
        for (int round = 1; round <= 2; ++round) {
          std::string body = ticket + " body " + std::to_string(round);
          auto begun = store.begin_ticket_generation(ticket, body, "llama3.2");
          if (!begun.is_ok() || begun->revision != round) ++failures;
          if (!begun.is_ok()) continue;
          auto seen = store.find_ticket_session(ticket);
          if (!seen.is_ok() || !seen.value() || seen.value()->status != SessionStatus::generating)
            ++failures;
          GenerationStats stats{"llama3.2", round, i, t, "stop"};
          if (!store.complete_ticket_generation(ticket, round, "answer to " + body, stats))
            ++failures;
        }
      }
    });
  }
  std::thread reader([&] {
    while (writing.load()) {
      for (int t = 0; t < kThreads; ++t) {
        for (int i = 0; i < kTickets; ++i) {
          auto found = store.find_ticket_session(ticket_name(t, i));
          if (!found.is_ok()) ++failures;
          if (!found.is_ok() || !found.value()) continue;
          const TicketSession& s = *found.value();
          bool complete = s.status == SessionStatus::complete;
          if (complete && s.response != "answer to " + s.prompt) ++failures;
          if (!complete && (!s.response.empty() || s.status != SessionStatus::generating))
            ++failures;
          if (s.revision_count != s.revision - 1) ++failures;
        }
      }
    }
  });
  for (auto& thread : threads)
    thread.join();
  writing = false;
  reader.join();
  EXPECT_EQ(failures.load(), 0);

  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kTickets; ++i) {
      std::string ticket = ticket_name(t, i);
      TicketSession s = find(store, ticket);
      EXPECT_EQ(s.revision, 2);
      EXPECT_EQ(s.status, SessionStatus::complete);
      EXPECT_EQ(s.response, "answer to " + ticket + " body 2");
      EXPECT_EQ(s.stats.response_tokens, i);
      EXPECT_EQ(s.stats.duration_ms, t);
      auto earlier = store.list_ticket_revisions(ticket);
      ASSERT_TRUE(earlier.is_ok());
      ASSERT_EQ(earlier.value().size(), 1u);
      EXPECT_EQ(earlier.value()[0].response, "answer to " + ticket + " body 1");
    }
  }
  RawDb raw(options_.path);
  EXPECT_EQ(raw.text("SELECT count(DISTINCT id) FROM conversations"),
            std::to_string(kThreads * kTickets * 2));
  EXPECT_EQ(raw.text("SELECT count(*) FROM messages"), std::to_string(kThreads * kTickets * 4));
}

}  // namespace
}  // namespace ticketaid
