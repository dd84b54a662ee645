#include "net/ticket_messages.h"

#include <nlohmann/json.hpp>

#include "core/ids.h"

namespace ticketaid {
namespace {

using nlohmann::json;

Status bad(std::string message) {
  return Status::error(ErrorCode::bad_request, std::move(message));
}

// Reads an optional field of the given kind; a present field of another type is an error.
template <class T>
Status optional_field(const json& j, const char* name, T& out) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return Status::ok();
  if constexpr (std::is_same_v<T, bool>) {
    if (!it->is_boolean()) return bad(std::string("\"") + name + "\" must be a boolean");
  } else {
    if (!it->is_string()) return bad(std::string("\"") + name + "\" must be a string");
  }
  out = it->get<T>();
  return Status::ok();
}

}  // namespace

Result<TicketClientMessage> parse_ticket_message(std::string_view text) {
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return bad("the message is not valid JSON");
  if (!j.is_object()) return bad("the message must be a JSON object");

  std::string type;
  if (Status s = optional_field(j, "type", type); !s) return s;

  if (type.empty() || type == "ticket") {
    auto body = j.find("ticketBody");
    if (body == j.end()) return bad("missing \"ticketBody\" (or a \"type\")");
    if (!body->is_string()) return bad("\"ticketBody\" must be a string");
    AskMessage ask;
    ask.ticket_body = body->get<std::string>();
    if (ask.ticket_body.empty()) return bad("\"ticketBody\" must not be empty");
    if (Status s = optional_field(j, "regenerate", ask.regenerate); !s) return s;
    return TicketClientMessage(std::move(ask));
  }
  if (type == "message") {
    auto content = j.find("content");
    if (content == j.end() || !content->is_string()) return bad("\"content\" must be a string");
    FollowUpMessage msg;
    msg.content = content->get<std::string>();
    if (msg.content.empty()) return bad("\"content\" must not be empty");
    if (Status s = optional_field(j, "messageId", msg.message_id); !s) return s;
    if (!msg.message_id.empty() && !valid_message_id(msg.message_id)) {
      return bad("a messageId is 1 to 128 characters of A-Z a-z 0-9 . _ : -");
    }
    return TicketClientMessage(std::move(msg));
  }
  if (type == "cancel") return TicketClientMessage(CancelMessage{});
  if (type == "ping") return TicketClientMessage(PingMessage{});
  return bad("unknown message type \"" + type + "\"");
}

}  // namespace ticketaid
