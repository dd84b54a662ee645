// Helpers shared by the one-shot commands (see command_support.h).
#include "app/command_support.h"

#include <cstdio>

namespace ticketaid {

Result<LoadedSettings> load_command_settings(const ConfigSources& sources) {
  auto loaded = load_settings(sources);
  if (!loaded) return loaded;
  for (const auto& warning : loaded->warnings) {
    std::fprintf(stderr, "ticketaid: warning: %s\n", warning.c_str());
  }
  return loaded;
}

std::string human_size(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double value = static_cast<double>(bytes) / 1024;
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f %s", value, kUnits[unit]);
  return text;
}

}  // namespace ticketaid
