// Chat replies: multi-turn conversations (chat sessions, and the follow-up
// questions of a ticket) on the same store, queue, single flight and streaming
// pipeline as ticket answers.
//
// send() stores the user's message (idempotent by the client's messageId), then
// streams the model's reply to it into the sink: joined when it is already being
// generated, answered from the store when it was already answered, or generated
// from the conversation so far (the system prompt, then the last
// sessions.context_messages messages; a ticket's body always stays first). One reply
// per conversation is generated at a time; a message sent meanwhile is answered
// after it.
//
// Thread-safety: every public method may be called from any thread and returns at
// once; blocking work runs on the executor given at construction.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "core/generation_queue.h"
#include "core/reply_sink.h"
#include "core/single_flight.h"
#include "core/ticket_service.h"
#include "llm/llm_client.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/config.h"

namespace ticketaid {

struct ChatMessageRequest {
  std::string conversation_id;  // a chat session; or empty, with ticket_id
  std::string ticket_id;        // a ticket's follow-up: its current conversation
  std::string content;
  std::string message_id;  // the client's messageId, for idempotency; may be empty
  std::string model;       // empty: the session's model, else ollama.model
};

// Runs once the user's message is stored (or found stored), before the reply
// streams; or with the error that stopped it (the sink gets the error too).
using MessageStored = std::function<void(const Result<StoredMessage>&)>;

class ChatService {
 public:
  ChatService(Store& store, LlmClient& llm, GenerationQueue& queue, Clock& clock,
              SettingsSource settings, BlockingExecutor blocking);

  void send(ChatMessageRequest request, std::shared_ptr<ReplySink> sink,
            MessageStored on_stored = {});

  // Blocking operations for the REST endpoints; they apply the same rules (limits,
  // expiry, validation) as send(). Call them on a blocking thread.
  Result<ConversationInfo> create_session(const std::string& user_id, const std::string& title,
                                          const std::string& model);
  // A live chat session (not_found when missing or expired).
  Result<ConversationInfo> find_session(const std::string& id);
  // Appends a message of any role without asking the model.
  Result<AppendOutcome> append(const std::string& conversation_id, const std::string& role,
                               const std::string& content, const std::string& message_id);
  // Checks a message's text against the rules: UTF-8, not empty, not too long.
  Status check_content(const std::string& content, const Settings& settings) const;

  // A chat session expires sessions.ttl_s after its last activity.
  int64_t expires_at_ms(const ConversationInfo& session, const Settings& settings) const;
  bool expired(const ConversationInfo& session, const Settings& settings) const;
  // Deletes expired chat sessions (blocking; the janitor calls it periodically).
  void purge_expired();

  std::size_t active_generations() const { return flights_.size(); }
  // The drain before shutdown(): new requests get busy, running replies go on.
  void refuse_new_requests() { refusing_ = true; }
  void shutdown();

 private:
  void handle(const ChatMessageRequest& request, const std::shared_ptr<ReplySink>& sink,
              const MessageStored& on_stored);
  Result<ConversationInfo> resolve(const ChatMessageRequest& request, const Settings& settings);
  void reply_to(const ConversationInfo& conversation, const StoredMessage& message,
                const std::string& model, const std::shared_ptr<ReplySink>& sink);
  bool serve_stored_reply(const ConversationInfo& conversation, const StoredMessage& message,
                          ReplySink& sink);
  std::shared_ptr<Generation> make_generation(const ConversationInfo& conversation,
                                              const StoredMessage& message,
                                              const std::string& model, const Settings& settings);

  Store& store_;
  LlmClient& llm_;
  GenerationQueue& queue_;
  Clock& clock_;
  SettingsSource settings_;
  BlockingExecutor blocking_;
  std::atomic<bool> shutting_down_{false};
  std::atomic<bool> refusing_{false};  // draining: new requests get busy
  SingleFlight flights_;               // by conversation id; prompt = the message answered
};

}  // namespace ticketaid
