// Structured fields for the journal, kept per thread (without spdlog, so that core
// headers can carry them cheaply). util/log.h logs; app/journal_sink.cpp sends these.
//
// Thread-safety: the fields belong to the calling thread.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace ticketaid {

// Journal fields (NAME, value) that the events logged on this thread carry while a
// LogScope lives: TICKET_ID, SESSION_ID, GENERATION_ID. Lines on standard error do
// not show them. Scopes nest; each removes its own fields.
using LogFields = std::vector<std::pair<std::string, std::string>>;
class LogScope {
 public:
  explicit LogScope(const LogFields& fields);
  ~LogScope();
  LogScope(const LogScope&) = delete;
  LogScope& operator=(const LogScope&) = delete;

 private:
  std::size_t depth_;  // this thread's field count before the scope
};
// This thread's fields, outermost first.
const LogFields& log_fields();

}  // namespace ticketaid
