#include "bench/report.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

namespace ticketaid::bench {
namespace {

using nlohmann::json;

// Thresholds in decimal units (1 MB = 10^6 bytes, 1 KB = 10^3 bytes): the stricter
// reading of the SPEC's figures. /proc reports kB of 1024 bytes.
constexpr double kMB = 1e6;
constexpr double kKB = 1e3;

__attribute__((format(printf, 1, 2))) std::string text(const char* format, ...) {
  char out[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(out, sizeof(out), format, args);
  va_end(args);
  return out;
}

// 1234567.8 -> "1,234,568"
std::string grouped(double value) {
  const std::string digits = text("%.0f", value < 0 ? -value : value);
  std::string out = value <= -0.5 ? "-" : "";
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::optional<json> load(const std::string& dir, const std::string& name) {
  std::ifstream in(dir + "/" + name + ".json");
  if (!in) return std::nullopt;
  json parsed = json::parse(in, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) return std::nullopt;
  return parsed;
}

double num(const json& j, const json::json_pointer& at) {
  if (!j.contains(at) || !j.at(at).is_number()) return 0;
  return j.at(at).get<double>();
}

// The result files of each phase of run.sh (its --only names).
struct Phase {
  const char* name;
  std::vector<const char*> files;
};
const std::vector<Phase>& phases() {
  static const std::vector<Phase> all = {
      {"startup", {"startup_bench", "startup_default", "idle"}},
      {"cached", {"cached"}},
      {"ttft", {"ttft1_direct", "ttft1_ticketaid", "ttft200_direct", "ttft200_ticketaid"}},
      {"fast", {"fast_direct", "fast_ticketaid"}},
      {"mirror", {"mirror_off", "mirror_off2", "mirror_up", "mirror_down"}},
  };
  return all;
}

// The chat path with the MongoDB mirror (run.sh's mirror phase): the same load, over
// the same window, on two daemons without the mirror, one with it and MongoDB up,
// and one with MongoDB down. The p99 with MongoDB down may exceed the larger of the
// two mirror-off p99s by 10 % or 2 ms, whichever is larger. On a shared machine two
// identical daemons differ by more than the 10 % asked for (a p99 of ~700 samples is
// their eighth-worst, and one burst of other work moves it), so the verdict is
// taken against the worse of the two; the report shows both, which is the noise floor.
constexpr double kMirrorSlackShare = 0.10;
constexpr double kMirrorSlackMs = 2;

struct Row {
  std::string what;
  std::string target;
  std::string measured;
  std::string result;
};

class Report {
 public:
  Report(std::string dir, bool smoke, std::string only)
      : dir_(std::move(dir)), smoke_(smoke), only_(std::move(only)) {
    bool known = only_.empty();
    for (const Phase& phase : phases()) {
      if (!wants(phase.name)) continue;
      known = true;
      if (std::string(phase.name) == "mirror" && (mirror_skipped_ = load(dir_, "mirror_skipped"))) {
        continue;  // run.sh said why; not a failure
      }
      for (const char* name : phase.files) {
        auto result = load(dir_, name);
        if (!result) {
          problems_.push_back(std::string(name) + ": no result (the mode did not run or failed)");
          continue;
        }
        add_result(name, *result);
      }
    }
    if (!known) problems_.push_back("--only " + only_ + ": no such phase");
    if (auto diagnostic = load(dir_, "ttft200_normal_ticketaid")) {
      add_result("ttft200_normal_ticketaid", *diagnostic);
    }
    for (const char* name : {"mirror_up_ready", "mirror_down_ready", "mirror_down_outbox"}) {
      if (auto ready = load(dir_, name)) results_[name] = *ready;
    }
  }

  int print() {
    targets();
    std::printf("\n");
    if (only_ != "mirror") {
      cpu_table();
      std::printf("\n");
    }
    if (wants("mirror")) {
      mirror_table();
      std::printf("\n");
    }
    if (!problems_.empty()) {
      std::printf("Problems:\n");
      for (const auto& p : problems_) {
        std::printf("- %s\n", p.c_str());
      }
      std::printf("\n");
    }
    if (smoke_) {
      std::printf("Smoke run: targets are not judged; %s.\n",
                  problems_.empty() ? "every mode ran" : "some modes failed");
      return problems_.empty() ? 0 : 1;
    }
    std::printf("%d of %d targets met%s.\n", met_, judged_,
                missed_ > 0 ? text(", %d missed", missed_).c_str() : "");
    if (!problems_.empty()) return 1;
    return missed_ > 0 ? 3 : 0;
  }

 private:
  bool wants(const char* phase) const { return only_.empty() || only_ == phase; }

  void add_result(const std::string& name, const json& result) {
    if (num(result, "/error_count"_json_pointer) > 0) {
      problems_.push_back(name + ": " + result.at("error_count").dump() + " errors " +
                          result.value("errors", json::object()).dump());
    }
    results_[name] = result;
  }

  const json* get(const char* name) const {
    auto it = results_.find(name);
    return it == results_.end() ? nullptr : &it->second;
  }

  // A verdict for "measured must be at most / at least limit"; `unit` formats the
  // distance to the limit.
  std::string verdict(double measured, double limit, bool at_most, const std::string& gap) {
    if (smoke_) return "(smoke)";
    ++judged_;
    const bool ok = at_most ? measured <= limit : measured >= limit;
    if (ok) {
      ++met_;
      return "pass";
    }
    ++missed_;
    return "**MISS** (" + gap + ")";
  }

  void add(Row row) { rows_.push_back(std::move(row)); }

  void added_ttft(const char* label, const char* direct_name, const char* via_name,
                  const char* stat, double limit_ms, bool judged) {
    const json* direct = get(direct_name);
    const json* via = get(via_name);
    const std::string target = judged ? text("≤ %.0f ms added", limit_ms) : "(no target)";
    if (!direct || !via) return add({label, target, "not measured", judged ? "**MISS**" : "—"});
    const auto at = json::json_pointer(std::string("/ttft/") + stat);
    const double d = num(*direct, at);
    const double v = num(*via, at);
    const double added = v - d;
    const std::string measured =
        text("%+.2f ms (ticketaid %.2f ms, direct %.2f ms; %s samples)", added, v, d,
             grouped(num(*via, "/ttft/count"_json_pointer)).c_str());
    const std::string result =
        judged ? verdict(added, limit_ms, true,
                         text("%.2f ms over, %.1fx the budget", added - limit_ms, added / limit_ms))
               : "—";
    add({label, target, measured, result});
  }

  void targets() {
    if (wants("ttft")) ttft_targets();
    if (wants("fast")) fast_target();
    if (wants("cached")) cached_targets();
    if (wants("startup")) startup_targets();
    if (wants("mirror")) mirror_targets();

    std::printf("| measurement | target (SPEC §8) | measured | result |\n");
    std::printf("| --- | --- | --- | --- |\n");
    for (const auto& r : rows_) {
      std::printf("| %s | %s | %s | %s |\n", r.what.c_str(), r.target.c_str(), r.measured.c_str(),
                  r.result.c_str());
    }
  }

  void ttft_targets() {
    added_ttft("Added time to first token, 200 streams, median", "ttft200_direct",
               "ttft200_ticketaid", "median_ms", 1, true);
    added_ttft("Added time to first token, 200 streams, p99", "ttft200_direct", "ttft200_ticketaid",
               "p99_ms", 5, true);
    added_ttft("Added time to first token, 1 stream, median", "ttft1_direct", "ttft1_ticketaid",
               "median_ms", 0, false);
    added_ttft("Added time to first token, 1 stream, p99", "ttft1_direct", "ttft1_ticketaid",
               "p99_ms", 0, false);

    if (get("ttft200_normal_ticketaid")) {
      added_ttft(
          "Diagnostic: added time to first token, 200 streams, median, with "
          "storage.synchronous = normal",
          "ttft200_direct", "ttft200_normal_ticketaid", "median_ms", 0, false);
      added_ttft("Diagnostic: the same, p99", "ttft200_direct", "ttft200_normal_ticketaid",
                 "p99_ms", 0, false);
    }

    if (const json* direct = get("ttft200_direct"), *via = get("ttft200_ticketaid");
        direct && via) {
      const double d = num(*direct, "/tokens_per_s"_json_pointer);
      const double v = num(*via, "/tokens_per_s"_json_pointer);
      const double ratio = d > 0 ? v / d * 100 : 0;
      add({"Tokens/s vs direct, 200 streams, 20 ms between tokens", "≥ 99 %",
           text("%.2f %% (ticketaid %s/s, direct %s/s)", ratio, grouped(v).c_str(),
                grouped(d).c_str()),
           verdict(ratio, 99, false, text("%.2f points short", 99 - ratio))});
    } else {
      add({"Tokens/s vs direct, 200 streams", "≥ 99 %", "not measured", "**MISS**"});
    }
  }

  void fast_target() {
    if (const json* via = get("fast_ticketaid")) {
      const double v = num(*via, "/tokens_per_s"_json_pointer);
      std::string measured =
          text("%s/s (%d streams)", grouped(v).c_str(), via->value("streams", 0));
      if (const json* direct = get("fast_direct")) {
        measured += text("; the fake alone serves %s/s to the same clients",
                         grouped(num(*direct, "/tokens_per_s"_json_pointer)).c_str());
      }
      add({"Tokens/s forwarded, Ollama not the bottleneck", "≥ 200,000/s", measured,
           verdict(v, 200000, false, text("%.0f %% of the target", v / 200000 * 100))});
    }
  }

  void cached_targets() {
    if (const json* cached = get("cached")) {
      const double p99 = num(*cached, "/rtt/p99_ms"_json_pointer);
      const double median = num(*cached, "/rtt/median_ms"_json_pointer);
      const double rate = num(*cached, "/round_trips_per_s"_json_pointer);
      const int conns = cached->value("connections", 0);
      add({text("Cached answer round trip p99, %d connections", conns), "< 1 ms",
           text("%.3f ms (median %.3f ms)", p99, median),
           verdict(p99, 1, true, text("%.2fx the limit", p99))});
      add({text("Cached answer round trips/s, %d connections", conns), "≥ 50,000/s",
           grouped(rate) + "/s",
           verdict(rate, 50000, false, text("%.0f %% of the target", rate / 50000 * 100))});
    }
  }

  void startup_targets() {
    if (const json* idle = get("idle")) {
      const double open_bytes = num(*idle, "/rss_open_kb"_json_pointer) * 1024;
      const double per_socket = num(*idle, "/per_socket_bytes"_json_pointer);
      const int opened = idle->value("sockets_open", 0);
      add({text("Resident memory with %s idle WebSockets", grouped(opened).c_str()), "< 100 MB",
           text("%.1f MB (%.1f MB before the sockets opened)", open_bytes / kMB,
                num(*idle, "/rss_before_kb"_json_pointer) * 1024 / kMB),
           verdict(open_bytes, 100 * kMB, true,
                   text("%.1f MB over", (open_bytes - 100 * kMB) / kMB))});
      add({"Memory per idle WebSocket", "< 8 KB", text("%.2f KB", per_socket / kKB),
           verdict(
               per_socket, 8 * kKB, true,
               text("%.2f KB over, %.1fx", (per_socket - 8 * kKB) / kKB, per_socket / (8 * kKB)))});
    }

    if (const json* start = get("startup_bench")) {
      const double rss = num(*start, "/idle_rss_kb"_json_pointer) * 1024;
      std::string measured = text("%.1f MB with bench.toml", rss / kMB);
      if (const json* defaults = get("startup_default")) {
        measured += text(", %.1f MB with the defaults",
                         num(*defaults, "/idle_rss_kb"_json_pointer) * 1024 / kMB);
      }
      add({"Idle daemon resident memory", "< 20 MB", measured,
           verdict(rss, 20 * kMB, true, text("%.1f MB over", (rss - 20 * kMB) / kMB))});
      const double worst = num(*start, "/ready/max_ms"_json_pointer);
      add({"Ready after start (exec to the listening line)", "≤ 200 ms",
           text("%.1f ms worst of %s, median %.1f ms", worst,
                grouped(num(*start, "/ready/count"_json_pointer)).c_str(),
                num(*start, "/ready/median_ms"_json_pointer)),
           verdict(worst, 200, true, text("%.0f ms over", worst - 200))});
    }
  }

  // "Chat path p99 with MongoDB down" against the mirror-off daemon, for one of the
  // stream latencies ("ttft" or "total").
  void mirror_p99(const char* label, const char* latency) {
    const std::string target =
        text("≤ the worse mirror-off daemon + %.0f %% or %.0f ms, whichever is larger",
             kMirrorSlackShare * 100, kMirrorSlackMs);
    const json* off = get("mirror_off");
    const json* off2 = get("mirror_off2");
    const json* down = get("mirror_down");
    if (!off || !off2 || !down) return add({label, target, "not measured", "**MISS**"});
    const auto at = json::json_pointer(std::string("/") + latency + "/p99_ms");
    const double o1 = num(*off, at);
    const double o2 = num(*off2, at);
    const double o = std::max(o1, o2);
    const double d = num(*down, at);
    const double limit = o + std::max(o * kMirrorSlackShare, kMirrorSlackMs);
    std::string measured = text(
        "%.2f ms down vs %.2f ms off (%+.2f ms, %+.1f %%); the two mirror-off daemons "
        "%.2f and %.2f ms",
        d, o, d - o, o > 0 ? (d - o) / o * 100 : 0, o1, o2);
    if (const json* up = get("mirror_up")) measured += text("; MongoDB up %.2f ms", num(*up, at));
    add({label, target, measured,
         verdict(d, limit, true, text("%.2f ms over the allowance", d - limit))});
  }

  void mirror_targets() {
    if (mirror_skipped_) {
      add({"Chat path p99 with the MongoDB mirror", "(phase skipped)",
           mirror_skipped_->value("reason", std::string("skipped")), "—"});
      return;
    }
    mirror_p99("Chat path time to first token p99, MongoDB down vs mirror off", "ttft");
    mirror_p99("Chat path answer total time p99, MongoDB down vs mirror off", "total");
  }

  // The four daemons of the mirror phase, with the mirror's state from /ready at the
  // end of the window.
  void mirror_table() {
    if (mirror_skipped_) {
      std::printf("MongoDB mirror phase skipped: %s\n",
                  mirror_skipped_->value("reason", std::string("skipped")).c_str());
      return;
    }
    std::printf(
        "| chat path, mirror | streams | ttft median / p99 | total median / p99 | answers/s | "
        "errors | daemon CPU s | mirror at the end (/ready) |\n");
    std::printf("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
    const struct {
      const char* name;
      const char* label;
      const char* ready;
    } runs[] = {{"mirror_off", "off", nullptr},
                {"mirror_off2", "off (a second daemon)", nullptr},
                {"mirror_up", "on, MongoDB up", "mirror_up_ready"},
                {"mirror_down", "on, MongoDB down", "mirror_down_ready"}};
    for (const auto& run : runs) {
      const json* r = get(run.name);
      if (!r) continue;
      const auto ms = [&](const char* at) { return num(*r, json::json_pointer(at)); };
      std::string mirror = "—";
      if (run.ready) {
        const json* ready = get(run.ready);
        if (ready && ready->contains("mirror")) {
          const json& m = ready->at("mirror");
          mirror = text("%s, outboxDepth %s, rowsSent %s", m.value("state", "?").c_str(),
                        grouped(num(m, "/outboxDepth"_json_pointer)).c_str(),
                        grouped(num(m, "/rowsSent"_json_pointer)).c_str());
        } else {
          mirror = "no /ready answer";
        }
      }
      if (std::string(run.name) == "mirror_down") {
        if (const json* outbox = get("mirror_down_outbox")) {
          mirror += text("; %s rows in its outbox after the stop",
                         grouped(num(*outbox, "/rows"_json_pointer)).c_str());
        }
      }
      std::printf("| %s | %d | %.2f / %.2f ms | %.2f / %.2f ms | %.1f | %s | %.2f | %s |\n",
                  run.label, r->value("streams", 0), ms("/ttft/median_ms"), ms("/ttft/p99_ms"),
                  ms("/total/median_ms"), ms("/total/p99_ms"), ms("/requests_per_s"),
                  grouped(ms("/error_count")).c_str(), ms("/cpu/daemon_s"), mirror.c_str());
    }
  }

  void cpu_table() {
    std::printf(
        "| phase | clients | ttft median / p99 | tokens/s or round trips/s | window s | "
        "load tool CPU s | daemon CPU s | fake Ollama CPU s | daemon CPU per item |\n");
    std::printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for (const char* name :
         {"ttft1_direct", "ttft1_ticketaid", "ttft200_direct", "ttft200_ticketaid",
          "ttft200_normal_ticketaid", "fast_direct", "fast_ticketaid", "cached"}) {
      const json* r = get(name);
      if (!r) continue;
      const bool cached = std::string(name) == "cached";
      const double items =
          cached ? num(*r, "/round_trips"_json_pointer) : num(*r, "/tokens"_json_pointer);
      const double rate = cached ? num(*r, "/round_trips_per_s"_json_pointer)
                                 : num(*r, "/tokens_per_s"_json_pointer);
      const json& cpu = r->value("cpu", json::object());
      const bool has_daemon = cpu.contains("daemon_s");
      const double daemon_s = num(cpu, "/daemon_s"_json_pointer);
      const auto ms = [&](const char* at) { return num(*r, json::json_pointer(at)); };
      std::printf(
          "| %s | %d | %s | %s %s | %.1f | %.2f | %s | %s | %s |\n", name,
          r->value(cached ? "connections" : "streams", 0),
          cached ? text("rtt %.3f / %.3f ms", ms("/rtt/median_ms"), ms("/rtt/p99_ms")).c_str()
                 : text("%.2f / %.2f ms", ms("/ttft/median_ms"), ms("/ttft/p99_ms")).c_str(),
          grouped(rate).c_str(), cached ? "rt/s" : "tok/s", num(cpu, "/wall_s"_json_pointer),
          num(cpu, "/client_s"_json_pointer), has_daemon ? text("%.2f", daemon_s).c_str() : "—",
          cpu.contains("ollama_s") ? text("%.2f", num(cpu, "/ollama_s"_json_pointer)).c_str() : "—",
          has_daemon && items > 0
              ? text("%.1f µs/%s", daemon_s * 1e6 / items, cached ? "round trip" : "token").c_str()
              : "—");
    }
    if (const json* idle = get("idle")) {
      std::printf(
          "\nIdle sockets: %d of %d opened in %.1f s, %d still open after the hold; daemon "
          "resident %s kB before, %s kB open, %s kB after closing them; %d daemon threads.\n",
          idle->value("sockets_open", 0), idle->value("sockets", 0),
          num(*idle, "/connect_s"_json_pointer), idle->value("still_open", 0),
          grouped(num(*idle, "/rss_before_kb"_json_pointer)).c_str(),
          grouped(num(*idle, "/rss_open_kb"_json_pointer)).c_str(),
          grouped(num(*idle, "/rss_after_close_kb"_json_pointer)).c_str(),
          idle->value("threads", 0));
    }
  }

  std::string dir_;
  bool smoke_;
  std::string only_;                    // one phase's name, or "" for all
  std::optional<json> mirror_skipped_;  // run.sh's {"reason"} when it skipped the mirror phase
  std::map<std::string, json> results_;
  std::vector<std::string> problems_;
  std::vector<Row> rows_;
  int judged_ = 0;
  int met_ = 0;
  int missed_ = 0;
};

}  // namespace

int print_report(const std::string& dir, bool smoke, const std::string& only) {
  return Report(dir, smoke, only).print();
}

}  // namespace ticketaid::bench
