// The seam between ticketaid and the model server.
//
// LlmClient is what the generation engine calls; ollama_client.cpp implements it
// over Ollama's HTTP API, and tests substitute fakes. All calls block: run them on
// the generation workers, never on an I/O thread. An implementation is safe to call
// from several threads at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/cancel_token.h"
#include "util/status.h"

namespace ticketaid {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

struct ChatRequest {
  std::string model;
  std::vector<ChatMessage> messages;
  nlohmann::json options = nlohmann::json::object();  // Ollama "options" (num_predict, ...)
  bool think = false;
};

// Time limits of one streamed reply (SPEC §2: a first-token limit and an idle-gap
// limit, plus a bound on the whole generation). Zero disables a limit.
struct ChatLimits {
  std::chrono::milliseconds first_token{120'000};
  std::chrono::milliseconds idle{60'000};
  std::chrono::milliseconds total{600'000};
};

// One delta of the stream. Exactly one of the fields is non-empty.
struct ChatDelta {
  std::string_view content;
  std::string_view thinking;
};

struct ChatOutcome {
  std::string model;
  std::optional<int64_t> prompt_tokens;
  std::optional<int64_t> response_tokens;
  std::optional<int64_t> duration_ms;  // Ollama's total_duration
  std::string done_reason;
};

struct ModelInfo {
  std::string name;
  int64_t size = 0;
  std::string modified_at;
};

class LlmClient {
 public:
  virtual ~LlmClient() = default;

  // Streams a reply. on_delta runs on the calling thread for each non-empty delta,
  // in order. Returns the outcome when the model reports done. Errors:
  // model_not_found (404), ollama_unavailable (unreachable, HTTP error, an error line
  // in the stream, a stream that ends without done), timeout (a limit passed),
  // cancelled (cancel.cancel() was called; the reason given there is returned).
  virtual Result<ChatOutcome> chat(const ChatRequest& request, const ChatLimits& limits,
                                   const std::function<void(const ChatDelta&)>& on_delta,
                                   CancelToken& cancel) = 0;

  virtual Result<std::vector<ModelInfo>> list_models() = 0;
  virtual Result<std::string> version() = 0;
};

struct OllamaOptions {
  std::string base_url = "http://127.0.0.1:11434";
  std::chrono::seconds connect_timeout{5};
};

std::unique_ptr<LlmClient> make_ollama_client(const OllamaOptions& options);

}  // namespace ticketaid
