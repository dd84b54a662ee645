// Splits a byte stream into newline-delimited lines (NDJSON).
//
// TCP reads split and merge lines at arbitrary offsets, including inside UTF-8
// sequences; feed() takes whatever arrived and calls back once per complete line,
// without the '\n' (and without a trailing '\r'). Empty lines are skipped. A line
// longer than max_line_bytes is an error: the splitter stops and reports it.
//
// Thread-safety: one thread uses a splitter.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace ticketaid {

class NdjsonSplitter {
 public:
  explicit NdjsonSplitter(std::size_t max_line_bytes = 8u << 20) : max_line_(max_line_bytes) {}

  // Returns false when a line exceeds the limit or on_line returned false; the
  // splitter then ignores further input.
  bool feed(std::string_view bytes, const std::function<bool(std::string_view line)>& on_line);

  // Bytes received after the last '\n' (a partial line at the end of the stream).
  const std::string& pending() const { return buffer_; }
  bool overflowed() const { return overflowed_; }

 private:
  std::size_t max_line_;
  std::string buffer_;
  bool stopped_ = false;
  bool overflowed_ = false;
};

}  // namespace ticketaid
