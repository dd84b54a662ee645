// Runs the MongoDB test double (fake_mongo.py) for the tests of the MongoDB mirror.
//
// Debian 12 has no MongoDB server, so these tests run the real C driver against
// tests/support/mongo/fake_mongo.py, an in-memory double that speaks the wire protocol
// (see its module comment for what it implements and where it differs from MongoDB).
// start() runs it with /usr/bin/python3 (which has Debian's python3-pymongo) on free
// loopback ports and waits (bounded) for its "fake_mongo mongo=P control=C" line;
// stop() ends it with SIGTERM; the destructor stops it. start() again after stop()
// reuses both ports, so a client or pool made from uri() reconnects.
//
// uri() is mongodb://127.0.0.1:P/?replicaSet=rs0&serverSelectionTimeoutMS=2000&
// connectTimeoutMS=2000&socketTimeoutMS=5000. replicaSet=rs0 matters: the double is
// the primary of a one-node replica set, so that mongoc sends lsid and txnNumber and
// retries a retryable write once after a network error, as it will in production.
//
// Faults (set_down, drop_before_write, drop_after_write, set_delay_ms, duplicate_key)
// and stats() go to the double's control port. documents(), indexes() and
// drop_database() read and change the data through the real driver, so they work the
// same against a real server.
//
// With TICKETAID_TEST_MONGO_URI set, the tests use that MongoDB instead: uri() returns
// it, start() only checks that it answers ping, and the fault methods, stats(),
// reset(), stop() and a second start() skip the test (GTEST_SKIP) and return false,
// as faults need the test double. Use a throwaway database on such a server: the
// tests drop the databases they use.
//
// Failures and skips are recorded with gtest (ADD_FAILURE, GTEST_SKIP) and the
// methods return false, so a test body writes `if (!mongo.start()) return;` and
// `if (!mongo.drop_before_write(1)) return;`. stats(), documents() and indexes()
// return a null json after recording a failure.
//
// Thread-safety: one thread uses a FakeMongo. init_mongoc_once() may be called from
// any thread.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>

namespace ticketaid::testing {

class TempDir;

// mongoc_init(), once per process (mongoc_cleanup is never called). The FakeMongo
// constructor calls it; tests that use libmongoc before making one call it first.
void init_mongoc_once();

class FakeMongo {
 public:
  FakeMongo();
  ~FakeMongo();  // stops a double it started
  FakeMongo(const FakeMongo&) = delete;
  FakeMongo& operator=(const FakeMongo&) = delete;

  // Starts the double (again on the same ports after stop) and waits for its ports
  // line; with TICKETAID_TEST_MONGO_URI, checks that the server answers ping.
  bool start();
  bool stop();  // SIGTERM, waits for the exit (SIGKILL after 10 s)
  bool running() const { return pid_ > 0; }
  bool external() const { return !external_uri_.empty(); }

  // The connection string for mongoc (see above), or TICKETAID_TEST_MONGO_URI.
  std::string uri() const;
  int port() const { return port_; }  // 0 when external
  int control_port() const { return control_port_; }

  // Faults, through the control port. Each counter is decremented by every write
  // command (update, insert, delete) it affects.
  bool set_down(bool down);       // true: close the listener and all connections
  bool drop_before_write(int n);  // close the connection instead of writing
  bool drop_after_write(int n);   // write, then close without replying
  bool set_delay_ms(int ms);      // all but hello/ping wait this long; 0: off
  bool duplicate_key(int n);      // answer E11000 (code 11000), writing nothing
  bool reset();                   // clears data, indexes, faults and statistics

  // {"commands": {name: n}, "writes_applied": n, "writes_applied_by_command": {...},
  //  "connections_open": n, "faults": {...}}.
  nlohmann::json stats();

  // Through the driver: the documents matching filter_json (MongoDB extended JSON),
  // in natural order, each as bson_as_relaxed_extended_json parsed into JSON (a JSON
  // array); the collection's index specifications (a JSON array); dropping a
  // database. The JSON is an ordered_json, keeping the fields in their BSON order
  // (an index's key order matters); nlohmann::json would sort them.
  nlohmann::ordered_json documents(const std::string& database, const std::string& collection,
                                   const std::string& filter_json = "{}");
  nlohmann::ordered_json indexes(const std::string& database, const std::string& collection);
  bool drop_database(const std::string& database);

  // What the double wrote to its log so far (the tail), for failure messages.
  std::string log_text() const;

 private:
  bool launch(std::string* error);        // starts the process, reads its ports line
  bool require_double(const char* what);  // skips the test when external
  bool post_faults(const nlohmann::json& faults);

  std::string external_uri_;
  bool started_ = false;
  int port_ = 0;
  int control_port_ = 0;
  int pid_ = -1;
  std::unique_ptr<TempDir> dir_;  // holds fake_mongo.log
};

}  // namespace ticketaid::testing
