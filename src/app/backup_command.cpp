// `ticketaid backup` (see backup_command.h).
#include "app/backup_command.h"

#include <cstdio>
#include <filesystem>

#include "app/command_support.h"
#include "store/store.h"

namespace ticketaid {

int run_backup(const std::string& dest_path, const ConfigSources& config) {
  auto loaded = load_command_settings(config);
  if (!loaded) {
    std::fprintf(stderr, "ticketaid: %s\n", loaded.status().message().c_str());
    return exit_status::usage;
  }
  const std::string& source = loaded->settings->storage_path;
  const auto fail = [&](const std::string& why) {
    std::fprintf(stderr, "ticketaid: cannot back up %s to %s: %s\n", source.c_str(),
                 dest_path.c_str(), why.c_str());
    return exit_status::failure;
  };
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path dest_dir = fs::path(dest_path).parent_path();
  if (!dest_dir.empty() && !fs::is_directory(dest_dir, ec)) {
    return fail("the directory " + dest_dir.string() + " does not exist");
  }
  if (Status copied = backup_sqlite_database(source, dest_path); !copied) {
    return fail(copied.message());
  }
  // Read the copy back: what it holds, and that it is sound.
  auto check = check_sqlite_database(dest_path);
  if (!check) return fail("the copy cannot be read: " + check.status().message());
  if (check->integrity != "ok") {
    fs::remove(dest_path, ec);  // never leave a copy behind that looks usable
    return fail("the copy failed its integrity check and was removed: " + check->integrity);
  }
  const uint64_t size = fs::file_size(dest_path, ec);
  std::printf("backed up %s to %s: %s, %lld %s, schema version %d\n", source.c_str(),
              dest_path.c_str(), ec ? "size unknown" : human_size(size).c_str(),
              static_cast<long long>(check->tickets), check->tickets == 1 ? "ticket" : "tickets",
              check->schema_version);
  return exit_status::ok;
}

}  // namespace ticketaid
