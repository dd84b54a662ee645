// The configuration table: one KeySpec per key, declared once in config_table.cpp.
//
// Private to util/: config.cpp derives the file parser, the environment names, the
// validation messages, config/ticketaid.toml and the --help text from these facts.
// The table is immutable after first use; reading it is thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/config.h"

namespace ticketaid::config {

// What a key holds, which decides how its value is read and checked.
enum class Kind {
  text,     // a string, optionally checked and normalized
  integer,  // an int within [min, max]
  size,     // a byte count within [min, max]; strings may use KiB, MiB, GiB suffixes
  boolean,  // true or false (the environment also takes 1/0, yes/no)
  choice,   // one of a fixed list of lowercase words
  table,    // a TOML table, kept as a JSON object (the environment takes JSON text)
  list,     // a TOML array of strings (the environment takes a comma-separated list)
};

// Where the key's value lives in Settings; the alternative always matches the Kind.
using Member = std::variant<std::string Settings::*, int Settings::*, std::size_t Settings::*,
                            bool Settings::*, nlohmann::json Settings::*,
                            std::vector<std::string> Settings::*>;

// Checks a text value and normalizes it in place; false when it is not allowed.
using Normalize = bool (*)(std::string& value);

inline constexpr bool kReloadable = true;
inline constexpr bool kRestart = false;

struct KeySpec {
  std::string_view name = {};  // "generation.max_parallel": section, dot, key
  Kind kind = Kind::text;
  Member member = {};
  bool reloadable = false;     // applied on SIGHUP; otherwise only at start
  std::string_view help = {};  // one sentence

  std::int64_t min = 0;  // integer and size
  std::int64_t max = 0;
  std::span<const std::string_view> choices = {};  // choice
  Normalize normalize = nullptr;                   // text
  std::string_view allowed = {};     // text: what normalize accepts ("an http:// URL")
  std::string_view legacy_env = {};  // an older environment name for this key
  bool secret = false;               // a password or key: never shown in messages or logs
  // When the default is worked out at load time (storage.path): what it is, and an
  // example value for the commented-out line in the rendered file.
  std::string_view computed_default = {};
  std::string_view example = {};

  // Modifiers for the table's less common facts.
  KeySpec checked(Normalize check, std::string_view what) && {
    normalize = check;
    allowed = what;
    return std::move(*this);
  }
  KeySpec legacy(std::string_view env_name) && {
    legacy_env = env_name;
    return std::move(*this);
  }
  KeySpec hidden() && {
    secret = true;
    return std::move(*this);
  }
  // An example value shown under the default, for keys whose default is empty.
  KeySpec sample(std::string_view example_value) && {
    example = example_value;
    return std::move(*this);
  }
  KeySpec computed(std::string_view what, std::string_view example_value) && {
    computed_default = what;
    example = example_value;
    return std::move(*this);
  }
};

struct SectionSpec {
  std::string_view name = {};  // "generation"
  std::string_view help = {};
};

// Every key, grouped by section, in the order the rendered file shows them.
std::span<const KeySpec> keys();
// One line of help per section, in the same order.
std::span<const SectionSpec> sections();

// nullptr when there is no such key.
const KeySpec* find_key(std::string_view name);

// The key's environment name: "generation.max_parallel" -> "TICKETAID_GENERATION_MAX_PARALLEL".
std::string env_name(const KeySpec& key);

// What the key accepts, completing "must be ..." ("an integer from 1 to 256"). Text
// sources (environment, command line) spell booleans and tables differently from the file.
std::string must_be(const KeySpec& key, bool from_text);

// "256 bytes", "64 KiB", "1 MiB".
std::string human_size(std::int64_t bytes);

// A TOML basic string, quoted and escaped (defined in config_render.cpp).
std::string toml_string(std::string_view text);

}  // namespace ticketaid::config
