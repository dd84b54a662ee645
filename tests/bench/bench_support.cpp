#include "bench/bench_support.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <sstream>

namespace ticketaid::bench {

ProcessSample read_process(int pid) {
  ProcessSample sample;
  const std::string dir = "/proc/" + std::to_string(pid);
  std::ifstream stat(dir + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return sample;
  // The command name (field 2) may hold spaces; the fields after it follow its ')'.
  const auto paren = line.rfind(')');
  if (paren == std::string::npos) return sample;
  std::istringstream fields(line.substr(paren + 2));
  std::vector<std::string> rest;
  for (std::string f; fields >> f;) {
    rest.push_back(f);
  }
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
  if (rest.size() < 13) return sample;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  sample.cpu_s = (std::stod(rest[11]) + std::stod(rest[12])) / ticks;

  std::ifstream status(dir + "/status");
  while (std::getline(status, line)) {
    auto value = [&line] { return std::stoll(line.substr(line.find(':') + 1)); };
    if (line.starts_with("VmRSS:")) sample.rss_kb = value();
    if (line.starts_with("VmHWM:")) sample.hwm_kb = value();
    if (line.starts_with("Threads:")) sample.threads = value();
  }
  sample.ok = true;
  return sample;
}

double self_cpu_s() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

void CpuMeter::start() {
  wall_start_ = Clock::now();
  self_start_ = self_cpu_s();
  for (const auto& p : pids_) {
    start_[p.name] = read_process(p.pid).cpu_s;
  }
}

json CpuMeter::stop() const {
  json out;
  out["wall_s"] = std::chrono::duration<double>(Clock::now() - wall_start_).count();
  out["client_s"] = self_cpu_s() - self_start_;
  for (const auto& p : pids_) {
    const ProcessSample now = read_process(p.pid);
    if (!now.ok) continue;
    out[p.name + "_s"] = now.cpu_s - start_.at(p.name);
    out[p.name + "_rss_kb"] = now.rss_kb;
  }
  return out;
}

json Latencies::summary() const {
  json out;
  out["count"] = us_.size();
  if (us_.empty()) return out;
  std::vector<int64_t> sorted = us_;
  std::sort(sorted.begin(), sorted.end());
  auto rank = [&sorted](double p) {
    const auto n = static_cast<double>(sorted.size());
    const auto index = static_cast<std::size_t>(std::max(1.0, std::ceil(p / 100.0 * n))) - 1;
    return static_cast<double>(sorted[std::min(index, sorted.size() - 1)]) / 1000.0;
  };
  const double sum = std::accumulate(sorted.begin(), sorted.end(), 0.0);
  out["min_ms"] = static_cast<double>(sorted.front()) / 1000.0;
  out["median_ms"] = rank(50);
  out["mean_ms"] = sum / static_cast<double>(sorted.size()) / 1000.0;
  out["p90_ms"] = rank(90);
  out["p99_ms"] = rank(99);
  out["max_ms"] = static_cast<double>(sorted.back()) / 1000.0;
  return out;
}

int64_t raise_fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return -1;
  if (limit.rlim_cur < limit.rlim_max) {
    // An unlimited hard limit still stops at the kernel's fs.nr_open.
    rlim_t wanted = limit.rlim_max;
    if (wanted == RLIM_INFINITY) {
      std::ifstream nr_open("/proc/sys/fs/nr_open");
      unsigned long long n = 1 << 20;
      nr_open >> n;
      wanted = static_cast<rlim_t>(n);
    }
    limit.rlim_cur = std::max(limit.rlim_cur, wanted);
    setrlimit(RLIMIT_NOFILE, &limit);
    getrlimit(RLIMIT_NOFILE, &limit);
  }
  return static_cast<int64_t>(limit.rlim_cur);
}

bool parse_address(const std::string& url, Address* out) {
  std::string rest = url;
  for (const char* scheme : {"http://", "ws://"}) {
    if (rest.starts_with(scheme)) rest = rest.substr(std::string(scheme).size());
  }
  rest = rest.substr(0, rest.find('/'));
  const auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  Address address;
  address.host = rest.substr(0, colon);
  try {
    std::size_t used = 0;
    address.port = std::stoi(rest.substr(colon + 1), &used);
    if (used != rest.size() - colon - 1) return false;
  } catch (const std::exception&) {
    return false;
  }
  if (address.port <= 0 || address.port > 65535) return false;
  *out = address;
  return true;
}

std::string make_run_id() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now).count();
  std::ostringstream id;
  id << std::hex << ms << "-" << getpid();
  return id.str();
}

}  // namespace ticketaid::bench
