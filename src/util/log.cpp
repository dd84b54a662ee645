#include "util/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <unistd.h>

namespace ticketaid {
namespace {

// "<N>" with the syslog priority of the message's level, the prefix journald reads
// from a service's standard error (sd-daemon(3)).
class JournalPriority final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    static constexpr const char* kPriority[] = {"<7>", "<7>", "<6>", "<4>", "<3>", "<2>", "<6>"};
    const char* prefix = kPriority[static_cast<int>(msg.level)];
    dest.append(prefix, prefix + 3);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return spdlog::details::make_unique<JournalPriority>();
  }
};

}  // namespace

bool set_log_level(std::string_view level) {
  auto parsed = spdlog::level::from_str(std::string(level));
  if (parsed == spdlog::level::off && level != "off") return false;
  spdlog::set_level(parsed);
  return true;
}

namespace {
thread_local LogFields thread_fields;
}  // namespace

LogScope::LogScope(const LogFields& fields) : depth_(thread_fields.size()) {
  thread_fields.insert(thread_fields.end(), fields.begin(), fields.end());
}

LogScope::~LogScope() {
  thread_fields.resize(depth_);
}

const LogFields& log_fields() {
  return thread_fields;
}

void init_logging(std::string_view level, spdlog::sink_ptr sink) {
  if (sink) {
    auto logger = std::make_shared<spdlog::logger>("ticketaid", std::move(sink));
    logger->set_pattern("%v");  // the journal keeps the time and the priority itself
    spdlog::set_default_logger(logger);
    set_log_level(level);
    return;
  }
  auto logger = spdlog::stderr_logger_mt("ticketaid");
  if (getenv("JOURNAL_STREAM") != nullptr) {
    // Under systemd the journal adds its own timestamps and reads the priority.
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<JournalPriority>('*').set_pattern("%*%v");
    logger->set_formatter(std::move(formatter));
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  }
  spdlog::set_default_logger(logger);
  set_log_level(level);
}

}  // namespace ticketaid
