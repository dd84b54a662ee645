// libFuzzer target for parse_ticket_message (src/net/ticket_messages.h): the text of
// every WebSocket message a client sends goes through it before anything
// else looks at it, so it must not crash, leak, throw or hit UB on any input.
//
// Beyond the sanitizers, the target checks the parser's own promises: an error is a
// bad_request with a message; a parsed message holds what the header says (a
// non-empty body or content, a valid messageId or none); and a parsed message written
// back as JSON parses to the same message.
//
// Build and run: .ci/fuzz [SECONDS] (tests/fuzz/CMakeLists.txt is the build).
// Reproduce one input: build-fuzz/ticket_message_fuzz FILE
//
// Thread-safety: libFuzzer calls the entry point from one thread.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include <nlohmann/json.hpp>

#include "core/ids.h"
#include "net/ticket_messages.h"

namespace {

using ticketaid::AskMessage;
using ticketaid::CancelMessage;
using ticketaid::FollowUpMessage;
using ticketaid::PingMessage;
using ticketaid::TicketClientMessage;

void check(bool condition) {
  if (!condition) __builtin_trap();
}

// The message as a client would send it; strings that the parser accepted were valid
// UTF-8 (nlohmann's lexer rejects anything else), so dump() cannot throw here.
std::string to_json(const TicketClientMessage& message) {
  nlohmann::json j = nlohmann::json::object();
  if (const auto* ask = std::get_if<AskMessage>(&message)) {
    j["ticketBody"] = ask->ticket_body;
    j["regenerate"] = ask->regenerate;
  } else if (const auto* follow_up = std::get_if<FollowUpMessage>(&message)) {
    j["type"] = "message";
    j["content"] = follow_up->content;
    if (!follow_up->message_id.empty()) j["messageId"] = follow_up->message_id;
  } else if (std::holds_alternative<CancelMessage>(message)) {
    j["type"] = "cancel";
  } else {
    j["type"] = "ping";
  }
  return j.dump();
}

bool same(const TicketClientMessage& a, const TicketClientMessage& b) {
  if (a.index() != b.index()) return false;
  if (const auto* x = std::get_if<AskMessage>(&a)) {
    const auto& y = std::get<AskMessage>(b);
    return x->ticket_body == y.ticket_body && x->regenerate == y.regenerate;
  }
  if (const auto* x = std::get_if<FollowUpMessage>(&a)) {
    const auto& y = std::get<FollowUpMessage>(b);
    return x->content == y.content && x->message_id == y.message_id;
  }
  return true;  // cancel and ping carry nothing
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ticketaid::Result<TicketClientMessage> parsed = ticketaid::parse_ticket_message(text);
  if (!parsed) {
    check(parsed.status().code() == ticketaid::ErrorCode::bad_request);
    check(!parsed.status().message().empty());
    return 0;
  }

  const TicketClientMessage& message = *parsed;
  if (const auto* ask = std::get_if<AskMessage>(&message)) {
    check(!ask->ticket_body.empty());
  } else if (const auto* follow_up = std::get_if<FollowUpMessage>(&message)) {
    check(!follow_up->content.empty());
    check(follow_up->message_id.empty() || ticketaid::valid_message_id(follow_up->message_id));
  }

  ticketaid::Result<TicketClientMessage> again = ticketaid::parse_ticket_message(to_json(message));
  check(again.is_ok());
  check(same(message, *again));
  return 0;
}
