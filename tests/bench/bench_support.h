// What every mode of the load tool shares, without Beast: the measurement window,
// latency summaries, the CPU time and memory of the processes under test (read from
// /proc), the tool's own CPU time, the open-file limit and addresses.
//
// Thread-safety: the free functions are safe from any thread; a CpuMeter and a
// Latencies belong to one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ticketaid::bench {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

// The span over which a mode counts: events before start (the warm-up) and after
// end (the drain) are not measured.
struct Window {
  Clock::time_point start;
  Clock::time_point end;
  bool contains(Clock::time_point t) const { return t >= start && t < end; }
  double seconds() const { return std::chrono::duration<double>(end - start).count(); }
};

// A process whose CPU time and memory a mode reports beside its own ("daemon",
// "ollama").
struct NamedPid {
  std::string name;
  int pid = 0;
};

struct ProcessSample {
  bool ok = false;      // false when the process could not be read (gone)
  double cpu_s = 0;     // utime + stime from /proc/PID/stat
  int64_t rss_kb = 0;   // VmRSS from /proc/PID/status
  int64_t hwm_kb = 0;   // VmHWM: the peak resident size
  int64_t threads = 0;  // Threads
};
ProcessSample read_process(int pid);

// User + system CPU seconds of this process (all its threads), from getrusage.
double self_cpu_s();

// CPU seconds spent by this tool and by each named process between start() and
// stop(), with the wall time between them.
class CpuMeter {
 public:
  explicit CpuMeter(std::vector<NamedPid> pids) : pids_(std::move(pids)) {}
  void start();
  // {"wall_s", "client_s", "<name>_s"..., "<name>_rss_kb"...}
  json stop() const;

 private:
  std::vector<NamedPid> pids_;
  Clock::time_point wall_start_;
  double self_start_ = 0;
  std::map<std::string, double> start_;
};

// Latencies in microseconds, summarized in milliseconds.
class Latencies {
 public:
  void add(int64_t us) { us_.push_back(us); }
  void merge(const Latencies& other) { us_.insert(us_.end(), other.us_.begin(), other.us_.end()); }
  std::size_t count() const { return us_.size(); }
  // {"count", "min_ms", "median_ms", "mean_ms", "p90_ms", "p99_ms", "max_ms"}; the
  // percentiles are nearest-rank. An empty set gives {"count": 0}.
  json summary() const;

 private:
  std::vector<int64_t> us_;
};

// A duration of s seconds.
inline Clock::duration seconds_of(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// Microseconds from a to b.
inline int64_t micros(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::microseconds>(b - a).count();
}

// Raises this process's soft open-file limit to its hard limit; returns the new
// soft limit.
int64_t raise_fd_limit();

// "http://HOST:PORT", "ws://HOST:PORT" or "HOST:PORT" (a trailing path is ignored).
struct Address {
  std::string host;
  int port = 0;
  std::string host_header() const { return host + ":" + std::to_string(port); }
};
bool parse_address(const std::string& url, Address* out);

// A short id unique to this run, so that every ticket is a cache miss.
std::string make_run_id();

}  // namespace ticketaid::bench
