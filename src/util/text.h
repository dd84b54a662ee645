// UTF-8 checks for text that clients send. Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace ticketaid {

// The number of Unicode characters (code points) in text, or nullopt when it is not
// well-formed UTF-8 (overlong forms, surrogates and values past U+10FFFF included).
std::optional<std::size_t> utf8_length(std::string_view text);

}  // namespace ticketaid
