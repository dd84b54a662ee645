// A fake Ollama server that speaks the real wire protocol of Ollama's HTTP API:
// POST /api/chat (streamed NDJSON, or one JSON object when "stream": false),
// GET /api/tags, GET /api/version. It listens on 127.0.0.1 with a free port and
// serves from its own threads. Tests script its replies and inject faults, and read
// back what it received.
//
// Thread-safety: all methods may be called from any thread while it serves.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ticketaid::testing {

enum class FakeFault {
  none,
  http_500,             // 500 {"error": "..."} before any token
  http_503,             // 503 {"error": "server busy"} (Ollama's own queue full)
  error_mid_stream,     // after fault_after_tokens tokens, one {"error": "..."} line, then end
  drop_mid_stream,      // after fault_after_tokens tokens, close the connection (no done line)
  stall_after_tokens,   // after fault_after_tokens tokens, send nothing more until released
  hang_before_headers,  // send nothing at all (not even headers) until released
};

struct FakeScript {
  std::vector<std::string> tokens = {"Hello", ", ", "world", "."};
  std::vector<std::string> thinking;               // streamed as message.thinking before tokens
  std::chrono::milliseconds first_token_delay{0};  // before headers and the first line
  std::chrono::milliseconds token_delay{0};        // between lines
  FakeFault fault = FakeFault::none;
  int fault_after_tokens = 0;
  // When > 0, the NDJSON body is written in pieces of this many bytes regardless of
  // line boundaries (splitting lines and UTF-8 sequences across writes).
  std::size_t split_writes_at = 0;
  std::string done_reason = "stop";
  int64_t prompt_eval_count = 12;
  int64_t eval_count = 0;  // 0: the number of tokens
};

// Where the fake listens and how many requests it can answer at once (each
// connection holds one server thread while it is answered).
struct FakeOllamaOptions {
  int port = 0;  // 0: a free port
  int threads = 64;
};

struct ReceivedRequest {
  std::string method;
  std::string path;
  nlohmann::json body;  // null when not JSON
};

class FakeOllama {
 public:
  FakeOllama();  // starts listening at once, on a free port
  // Throws std::runtime_error when the port cannot be bound.
  explicit FakeOllama(FakeOllamaOptions options);
  ~FakeOllama();  // stops, releasing every stalled or hanging request
  FakeOllama(const FakeOllama&) = delete;
  FakeOllama& operator=(const FakeOllama&) = delete;

  int port() const;
  std::string url() const;  // "http://127.0.0.1:PORT"

  // Models reported by /api/tags; a chat for any other model answers 404
  // {"error": "model \"X\" not found, try pulling it first"} as Ollama does.
  // As in Ollama, a name without a tag stands for its ":latest" tag.
  void set_models(std::vector<std::string> models);  // default {"llama3.2"}
  void set_version(std::string version);             // default "0.5.7"

  // The script used for every following /api/chat request.
  void set_script(FakeScript script);

  // Releases requests held by stall_after_tokens / hang_before_headers: they then
  // end (the stalled one continues with its remaining tokens and done).
  void release();

  // Counters and the log of what was received.
  int chat_requests() const;  // POST /api/chat received (counted on arrival)
  int active_chats() const;   // /api/chat requests currently being answered
  std::vector<ReceivedRequest> requests() const;
  nlohmann::json last_chat_body() const;

  // Blocks until chat_requests() >= n or the timeout passes; returns whether reached.
  bool wait_for_chat_requests(int n, std::chrono::milliseconds timeout) const;
  // Blocks until a chat request's connection was closed by the client while the fake
  // was still answering (a cancel); returns whether it happened within the timeout.
  bool wait_for_client_abort(std::chrono::milliseconds timeout) const;
  int client_aborts() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ticketaid::testing
