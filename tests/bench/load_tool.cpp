// bench_load: the load tool of ticketaid's benchmarks. One binary with modes; each
// prints its results as one JSON object on standard output (progress and errors go
// to standard error). tests/bench/run.sh drives it and prints the table.
//
//   bench_load ttft|throughput --url URL [--streams N] [timing]
//       closed-loop answer streams through ticketaid's WebSocket
//   bench_load direct-ttft|direct-throughput --ollama URL [--streams N] [--model M] [timing]
//       the same clients talking to Ollama (or the fake) directly
//   bench_load cached --url URL [--connections N] [timing]
//       cached answers on open WebSockets
//   bench_load idle --url URL --daemon-pid PID [--sockets N] [--concurrency N]
//                   [--settle S] [--hold S]
//       idle WebSockets and the daemon's resident memory
//   bench_load startup [--runs N] [--settle S] [--timeout S] [--log FILE] -- COMMAND...
//       time from exec to the listening line, and idle memory
//   bench_load report --dir DIR [--smoke] [--only PHASE]
//       the Markdown results table from the JSON files of run.sh (of one phase)
//
// timing: [--threads N] [--warmup S] [--duration S] [--drain S] [--daemon-pid PID]
//         [--ollama-pid PID] [--run-id ID]
//
// The tool raises its own open-file limit to the hard limit. The ttft and
// throughput modes are the same measurement; both names exist so that scripts
// read as what they measure.
//
// Thread-safety: main parses the command line and runs one mode.
#include <cstdio>
#include <exception>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/load_modes.h"
#include "bench/report.h"

namespace {

using namespace ticketaid::bench;

constexpr const char* kUsage =
    "usage: bench_load MODE [options]\n"
    "  ttft|throughput --url URL [--streams N] [timing]\n"
    "  direct-ttft|direct-throughput --ollama URL [--streams N] [--model M] [timing]\n"
    "  cached --url URL [--connections N] [timing]\n"
    "  idle --url URL --daemon-pid PID [--sockets N] [--concurrency N] [--settle S] [--hold S]\n"
    "  startup [--runs N] [--settle S] [--timeout S] [--log FILE] -- COMMAND...\n"
    "  report --dir DIR [--smoke] [--only PHASE]\n"
    "timing: [--threads N] [--warmup S] [--duration S] [--drain S] [--daemon-pid PID]\n"
    "        [--ollama-pid PID] [--run-id ID]\n";

// "--key value" pairs (and the flag --smoke); what follows "--" is kept apart.
class Args {
 public:
  Args(int argc, char** argv, int first) {
    for (int i = first; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--") {
        rest_.assign(argv + i + 1, argv + argc);
        return;
      }
      if (!arg.starts_with("--")) throw std::invalid_argument("unexpected argument " + arg);
      if (arg == "--smoke") {
        values_[arg] = "1";
        continue;
      }
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      values_[arg] = argv[++i];
    }
  }

  std::string text(const std::string& key, const std::string& fallback = "") {
    used_.insert(key);
    auto it = values_.find(key);
    return it == values_.end() ? fallback : it->second;
  }
  std::string required(const std::string& key) {
    std::string value = text(key);
    if (value.empty()) throw std::invalid_argument(key + " is required");
    return value;
  }
  int integer(const std::string& key, int fallback, int min, int max) {
    const std::string value = text(key);
    if (value.empty()) return fallback;
    std::size_t used = 0;
    const int n = std::stoi(value, &used);
    if (used != value.size() || n < min || n > max) {
      throw std::invalid_argument(key + " must be an integer from " + std::to_string(min) + " to " +
                                  std::to_string(max));
    }
    return n;
  }
  double seconds(const std::string& key, double fallback) {
    const std::string value = text(key);
    if (value.empty()) return fallback;
    std::size_t used = 0;
    const double s = std::stod(value, &used);
    if (used != value.size() || s < 0 || s > 86400) {
      throw std::invalid_argument(key + " must be a number of seconds");
    }
    return s;
  }
  bool flag(const std::string& key) { return !text(key).empty(); }
  Address address(const std::string& key) {
    Address a;
    if (!parse_address(required(key), &a)) {
      throw std::invalid_argument(key + " must be a URL such as http://127.0.0.1:8080");
    }
    return a;
  }
  const std::vector<std::string>& rest() const { return rest_; }

  // Every option given must have been read by the mode.
  void check_all_used() const {
    for (const auto& [key, value] : values_) {
      if (!used_.count(key)) throw std::invalid_argument("unknown option " + key);
    }
  }

 private:
  std::map<std::string, std::string> values_;
  std::set<std::string> used_;
  std::vector<std::string> rest_;
};

std::vector<NamedPid> pids_of(Args& args) {
  std::vector<NamedPid> pids;
  if (int pid = args.integer("--daemon-pid", 0, 0, 1 << 30); pid > 0)
    pids.push_back({"daemon", pid});
  if (int pid = args.integer("--ollama-pid", 0, 0, 1 << 30); pid > 0)
    pids.push_back({"ollama", pid});
  return pids;
}

Timing timing_of(Args& args) {
  Timing t;
  t.threads = args.integer("--threads", 1, 1, 64);
  t.warmup_s = args.seconds("--warmup", t.warmup_s);
  t.duration_s = args.seconds("--duration", t.duration_s);
  t.drain_s = args.seconds("--drain", t.drain_s);
  t.pids = pids_of(args);
  t.run_id = args.text("--run-id", make_run_id());
  if (t.duration_s <= 0) throw std::invalid_argument("--duration must be above 0");
  return t;
}

json run_mode(const std::string& mode, Args& args) {
  if (mode == "ttft" || mode == "throughput" || mode == "direct-ttft" ||
      mode == "direct-throughput") {
    StreamOptions o;
    o.direct = mode.starts_with("direct-");
    o.target = args.address(o.direct ? "--ollama" : "--url");
    o.streams = args.integer("--streams", 1, 1, 100000);
    o.model = args.text("--model", o.model);
    o.timing = timing_of(args);
    args.check_all_used();
    return run_streams(o);
  }
  if (mode == "cached") {
    CachedOptions o;
    o.target = args.address("--url");
    o.connections = args.integer("--connections", o.connections, 1, 100000);
    o.timing = timing_of(args);
    args.check_all_used();
    return run_cached(o);
  }
  if (mode == "idle") {
    IdleOptions o;
    o.target = args.address("--url");
    o.sockets = args.integer("--sockets", o.sockets, 1, 1000000);
    o.concurrency = args.integer("--concurrency", o.concurrency, 1, 100000);
    o.settle_s = args.seconds("--settle", o.settle_s);
    o.hold_s = args.seconds("--hold", o.hold_s);
    o.daemon = {"daemon", args.integer("--daemon-pid", 0, 1, 1 << 30)};
    if (o.daemon.pid <= 0) throw std::invalid_argument("--daemon-pid is required");
    if (int pid = args.integer("--ollama-pid", 0, 0, 1 << 30); pid > 0) {
      o.pids.push_back({"ollama", pid});
    }
    o.run_id = args.text("--run-id", make_run_id());
    args.check_all_used();
    return run_idle(o);
  }
  if (mode == "startup") {
    StartupOptions o;
    o.runs = args.integer("--runs", o.runs, 1, 1000);
    o.settle_s = args.seconds("--settle", o.settle_s);
    o.timeout_s = args.seconds("--timeout", o.timeout_s);
    o.log_file = args.text("--log");
    o.command = args.rest();
    args.check_all_used();
    return run_startup(o);
  }
  throw std::invalid_argument("unknown mode " + mode);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string mode = argv[1];
  try {
    Args args(argc, argv, 2);
    if (mode == "report") {
      const std::string dir = args.required("--dir");
      const bool smoke = args.flag("--smoke");
      const std::string only = args.text("--only");
      args.check_all_used();
      return print_report(dir, smoke, only);
    }
    const int64_t fd_limit = raise_fd_limit();
    json result = run_mode(mode, args);
    result["mode"] = mode;
    result["fd_limit"] = fd_limit;
    std::printf("%s\n", result.dump(2).c_str());
    return 0;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "bench_load: %s\n%s", e.what(), kUsage);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_load %s: %s\n", mode.c_str(), e.what());
    return 1;
  }
}
