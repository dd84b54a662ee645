// Runs fake_mongo.py as a child process and reads data through libmongoc (see
// fake_mongo.h).
//
// The child is started with spawn_child (child_process.h): fork and execv, /dev/null
// as standard input, a pipe as standard output (for the one ports line), a log file
// as standard error, no other inherited descriptors, default signal handling, and
// SIGKILL when the thread that started it ends. The control port is spoken to with
// httplib; data is read with a short-lived mongoc_client_t per call.
//
// Thread-safety: one thread uses a FakeMongo.
#include "support/mongo/fake_mongo.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>
#include <mongoc/mongoc.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <utility>
#include <vector>

#include "support/child_process.h"
#include "support/daemon_process.h"
#include "support/mongo/mongoc_handles.h"

#ifndef TICKETAID_FAKE_MONGO_SCRIPT
#error "TICKETAID_FAKE_MONGO_SCRIPT must name tests/support/mongo/fake_mongo.py"
#endif

namespace ticketaid::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kPython = "/usr/bin/python3";
constexpr int kReadyTimeoutMs = 10'000;
constexpr int kStopTimeoutMs = 10'000;
constexpr int kControlTimeoutS = 10;
constexpr std::size_t kMaxPortsLine = 256;

std::string bson_error_text(const bson_error_t& error) {
  return std::string(error.message) + " (domain " + std::to_string(error.domain) + ", code " +
         std::to_string(error.code) + ")";
}

// A client for one call, or null with *error set.
ClientPtr make_client(const std::string& uri, std::string* error) {
  bson_error_t bson_error;
  mongoc_uri_t* parsed = mongoc_uri_new_with_error(uri.c_str(), &bson_error);
  if (parsed == nullptr) {
    *error = "bad MongoDB URI " + uri + ": " + bson_error.message;
    return nullptr;
  }
  ClientPtr client(mongoc_client_new_from_uri_with_error(parsed, &bson_error));
  mongoc_uri_destroy(parsed);
  if (!client) {
    *error = "cannot make a client for " + uri + ": " + bson_error.message;
    return nullptr;
  }
  mongoc_client_set_error_api(client.get(), MONGOC_ERROR_API_VERSION_2);
  mongoc_client_set_appname(client.get(), "ticketaid-test-reader");
  return client;
}

// Appends every document of the cursor to *out as relaxed extended JSON.
bool drain_cursor(mongoc_cursor_t* cursor, nlohmann::ordered_json* out, std::string* error) {
  const bson_t* doc = nullptr;
  while (mongoc_cursor_next(cursor, &doc)) {
    char* text = bson_as_relaxed_extended_json(doc, nullptr);
    if (text == nullptr) {
      *error = "bson_as_relaxed_extended_json failed";
      return false;
    }
    out->push_back(nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false));
    bson_free(text);
  }
  bson_error_t bson_error;
  if (mongoc_cursor_error(cursor, &bson_error)) {
    *error = bson_error_text(bson_error);
    return false;
  }
  return true;
}

}  // namespace

void init_mongoc_once() {
  static std::once_flag once;
  std::call_once(once, [] { mongoc_init(); });
}

FakeMongo::FakeMongo() {
  init_mongoc_once();
  if (const char* uri = getenv("TICKETAID_TEST_MONGO_URI"); uri != nullptr && *uri != '\0') {
    external_uri_ = uri;
  }
}

FakeMongo::~FakeMongo() {
  terminate_child(&pid_, kStopTimeoutMs);
}

bool FakeMongo::start() {
  if (external()) {
    if (started_) {
      [] {
        GTEST_SKIP() << "TICKETAID_TEST_MONGO_URI names an external MongoDB, which this test "
                        "cannot restart";
      }();
      return false;
    }
    started_ = true;
    std::string error;
    ClientPtr client = make_client(external_uri_, &error);
    if (client) {
      bson_t* ping = BCON_NEW("ping", BCON_INT32(1));
      bson_error_t bson_error;
      const bool ok =
          mongoc_client_command_simple(client.get(), "admin", ping, nullptr, nullptr, &bson_error);
      bson_destroy(ping);
      if (ok) return true;
      error = bson_error_text(bson_error);
    }
    ADD_FAILURE() << "the MongoDB of TICKETAID_TEST_MONGO_URI does not answer ping: " << error;
    return false;
  }
  if (pid_ > 0) return true;
  if (access(kPython, X_OK) != 0) {
    ADD_FAILURE() << kPython << " is missing: the MongoDB test double needs Debian's python3 "
                  << "and python3-pymongo (or set TICKETAID_TEST_MONGO_URI to a MongoDB to use)";
    return false;
  }
  if (!dir_) dir_ = std::make_unique<TempDir>();
  std::string error;
  if (launch(&error)) {
    started_ = true;
    return true;
  }
  ADD_FAILURE() << "fake_mongo.py did not start: " << error << "\nlog:\n" << log_text();
  return false;
}

bool FakeMongo::launch(std::string* error) {
  std::vector<std::string> args = {kPython, TICKETAID_FAKE_MONGO_SCRIPT, "--verbose"};
  if (started_) {  // a restart keeps its ports
    args.insert(args.end(),
                {"--port", std::to_string(port_), "--control-port", std::to_string(control_port_)});
  }
  const std::string log_path = (dir_->path() / "fake_mongo.log").string();
  const int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int out[2] = {-1, -1};
  if (log_fd < 0 || pipe2(out, O_CLOEXEC) != 0) {
    *error = std::string("cannot open the log or a pipe: ") + std::strerror(errno);
    for (const int fd : {log_fd, out[0], out[1]}) {
      if (fd >= 0) close(fd);
    }
    return false;
  }
  const pid_t pid = spawn_child(std::move(args), out[1], log_fd, error);
  close(log_fd);
  close(out[1]);
  if (pid < 0) {
    close(out[0]);
    return false;
  }
  pid_ = pid;

  // Reads "fake_mongo mongo=P control=C\n" within the deadline.
  const auto deadline = Clock::now() + std::chrono::milliseconds(kReadyTimeoutMs);
  std::string line;
  bool complete = false;
  while (!complete && line.size() < kMaxPortsLine) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) break;
    pollfd p{out[0], POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char c = 0;
    const ssize_t n = read(out[0], &c, 1);
    if (n <= 0) break;  // the child exited, or closed its standard output
    if (c == '\n') {
      complete = true;
    } else {
      line += c;
    }
  }
  close(out[0]);
  int port = 0;
  int control = 0;
  if (!complete ||
      std::sscanf(line.c_str(), "fake_mongo mongo=%d control=%d", &port, &control) != 2) {
    *error =
        "no ports line within " + std::to_string(kReadyTimeoutMs) + " ms (read \"" + line + "\")";
    ::kill(pid_, SIGKILL);
    reap_child_within(&pid_, kStopTimeoutMs);
    return false;
  }
  port_ = port;
  control_port_ = control;
  return true;
}

bool FakeMongo::stop() {
  if (!require_double("stop it")) return false;
  if (terminate_child(&pid_, kStopTimeoutMs)) return true;
  ADD_FAILURE() << "fake_mongo.py ignored SIGTERM for " << kStopTimeoutMs << " ms";
  return false;
}

std::string FakeMongo::uri() const {
  if (external()) return external_uri_;
  return "mongodb://127.0.0.1:" + std::to_string(port_) +
         "/?replicaSet=rs0&serverSelectionTimeoutMS=2000&connectTimeoutMS=2000"
         "&socketTimeoutMS=5000";
}

bool FakeMongo::require_double(const char* what) {
  if (!external()) return true;
  [what] {
    GTEST_SKIP() << "TICKETAID_TEST_MONGO_URI names an external MongoDB: cannot " << what
                 << " (faults need the test double; unset TICKETAID_TEST_MONGO_URI)";
  }();
  return false;
}

bool FakeMongo::post_faults(const nlohmann::json& faults) {
  if (!require_double("inject faults")) return false;
  httplib::Client control("127.0.0.1", control_port_);
  control.set_connection_timeout(kControlTimeoutS);
  control.set_read_timeout(kControlTimeoutS);
  const auto result = control.Post("/faults", faults.dump(), "application/json");
  if (result && result->status == 200) return true;
  ADD_FAILURE() << "POST /faults " << faults.dump() << " to fake_mongo failed: "
                << (result ? std::to_string(result->status) + " " + result->body
                           : httplib::to_string(result.error()));
  return false;
}

bool FakeMongo::set_down(bool down) {
  return post_faults({{"down", down}});
}
bool FakeMongo::drop_before_write(int n) {
  return post_faults({{"drop_before_write", n}});
}
bool FakeMongo::drop_after_write(int n) {
  return post_faults({{"drop_after_write", n}});
}
bool FakeMongo::set_delay_ms(int ms) {
  return post_faults({{"delay_ms", ms}});
}
bool FakeMongo::duplicate_key(int n) {
  return post_faults({{"duplicate_key", n}});
}

bool FakeMongo::reset() {
  if (!require_double("reset it")) return false;
  httplib::Client control("127.0.0.1", control_port_);
  control.set_connection_timeout(kControlTimeoutS);
  control.set_read_timeout(kControlTimeoutS);
  const auto result = control.Post("/reset", "{}", "application/json");
  if (result && result->status == 200) return true;
  ADD_FAILURE() << "POST /reset to fake_mongo failed: "
                << (result ? std::to_string(result->status) : httplib::to_string(result.error()));
  return false;
}

nlohmann::json FakeMongo::stats() {
  if (!require_double("read the double's statistics")) return nullptr;
  httplib::Client control("127.0.0.1", control_port_);
  control.set_connection_timeout(kControlTimeoutS);
  control.set_read_timeout(kControlTimeoutS);
  const auto result = control.Get("/stats");
  if (result && result->status == 200) {
    nlohmann::json parsed = nlohmann::json::parse(result->body, nullptr, false);
    if (!parsed.is_discarded()) return parsed;
  }
  ADD_FAILURE() << "GET /stats from fake_mongo failed: "
                << (result ? std::to_string(result->status) + " " + result->body
                           : httplib::to_string(result.error()));
  return nullptr;
}

nlohmann::ordered_json FakeMongo::documents(const std::string& database,
                                            const std::string& collection,
                                            const std::string& filter_json) {
  std::string error;
  ClientPtr client = make_client(uri(), &error);
  if (client) {
    bson_error_t bson_error;
    OwnedBson filter(bson_new_from_json(reinterpret_cast<const uint8_t*>(filter_json.data()),
                                        static_cast<ssize_t>(filter_json.size()), &bson_error));
    if (!filter) {
      ADD_FAILURE() << "documents(): a bad filter " << filter_json << ": " << bson_error.message;
      return nullptr;
    }
    CollectionPtr coll(
        mongoc_client_get_collection(client.get(), database.c_str(), collection.c_str()));
    CursorPtr cursor(mongoc_collection_find_with_opts(coll.get(), filter.get(), nullptr, nullptr));
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    if (drain_cursor(cursor.get(), &out, &error)) return out;
  }
  ADD_FAILURE() << "documents(" << database << "." << collection << ", " << filter_json
                << ") failed: " << error;
  return nullptr;
}

nlohmann::ordered_json FakeMongo::indexes(const std::string& database,
                                          const std::string& collection) {
  std::string error;
  ClientPtr client = make_client(uri(), &error);
  if (client) {
    CollectionPtr coll(
        mongoc_client_get_collection(client.get(), database.c_str(), collection.c_str()));
    CursorPtr cursor(mongoc_collection_find_indexes_with_opts(coll.get(), nullptr));
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    if (drain_cursor(cursor.get(), &out, &error)) return out;
  }
  ADD_FAILURE() << "indexes(" << database << "." << collection << ") failed: " << error;
  return nullptr;
}

bool FakeMongo::drop_database(const std::string& database) {
  std::string error;
  ClientPtr client = make_client(uri(), &error);
  if (client) {
    mongoc_database_t* db = mongoc_client_get_database(client.get(), database.c_str());
    bson_error_t bson_error;
    const bool ok = mongoc_database_drop_with_opts(db, nullptr, &bson_error);
    mongoc_database_destroy(db);
    if (ok) return true;
    error = bson_error_text(bson_error);
  }
  ADD_FAILURE() << "drop_database(" << database << ") failed: " << error;
  return false;
}

std::string FakeMongo::log_text() const {
  if (!dir_) return std::string();
  std::ifstream in(dir_->path() / "fake_mongo.log", std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  std::string text = out.str();
  if (text.size() > 8000) text = "..." + text.substr(text.size() - 8000);
  return text;
}

}  // namespace ticketaid::testing
