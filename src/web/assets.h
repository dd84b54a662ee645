// The web console's files, embedded in the binary at build time.
//
// src/web/CMakeLists.txt runs `npm ci` for the pinned Markdown libraries, then
// src/web/embed_assets.mjs writes web_assets.cpp into the build tree: every file of
// src/web/ that is served (pages, styles, scripts, the icon) and the libraries under
// vendor/, each with its content type, a gzip copy when that is smaller, and an ETag
// (a hash of the content). net/static_files.cpp serves them; docs/console.md and
// docs/decisions.md say why they are embedded.
//
// Thread-safety: immutable data with static storage; read from any thread.
#pragma once

#include <span>
#include <string_view>

namespace ticketaid::web {

struct Asset {
  std::string_view name;          // relative to src/web: "index.html", "vendor/libs.js"
  std::string_view content_type;  // "text/html; charset=utf-8"
  std::string_view body;
  std::string_view gzip;       // empty when compressing does not pay
  std::string_view etag;       // quoted strong validator of body: "\"3f2a...\""
  std::string_view gzip_etag;  // of the gzip copy: "\"3f2a...-gz\""
  bool immutable = false;      // its name carries its version (vendor libraries)
};

// Every embedded file, sorted by name.
std::span<const Asset> assets();

// The file of that name, or nullptr.
const Asset* find_asset(std::string_view name);

}  // namespace ticketaid::web
