#include "llm/ndjson.h"

namespace ticketaid {

bool NdjsonSplitter::feed(std::string_view bytes,
                          const std::function<bool(std::string_view line)>& on_line) {
  if (stopped_) return false;
  while (!bytes.empty()) {
    const auto newline = bytes.find('\n');
    const auto take = newline == std::string_view::npos ? bytes.size() : newline;
    if (buffer_.size() + take > max_line_) {
      overflowed_ = stopped_ = true;
      buffer_.clear();
      return false;
    }
    if (newline == std::string_view::npos) {
      buffer_.append(bytes);
      return true;
    }
    std::string_view line;
    if (buffer_.empty()) {
      line = bytes.substr(0, newline);  // the common case: no copy
    } else {
      buffer_.append(bytes.substr(0, newline));
      line = buffer_;
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty() && !on_line(line)) {
      stopped_ = true;
      buffer_.clear();
      return false;
    }
    buffer_.clear();
    bytes.remove_prefix(newline + 1);
  }
  return true;
}

}  // namespace ticketaid
