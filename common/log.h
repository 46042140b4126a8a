#pragma once
// Logging: spdlog, one line per event in logfmt (ts=... level=... logger=... msg="..." key=value),
// UTC timestamps, to stderr so systemd/journald and docker collect it.

#include <spdlog/spdlog.h>

#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>

namespace birdwatch {

// level: trace|debug|info|warn|error; throws ConfigError on anything else.
void init_logging(const std::string& program, const std::string& level);

std::shared_ptr<spdlog::logger> make_logger(const std::string& component);

// A value for a log line, written as a quoted logfmt value whatever it holds:
// quotes and backslashes escaped, control bytes and invalid UTF-8 as \xNN, and cut
// at max_log_value_bytes. Every value that comes from outside (input, peers, errors
// that quote them) goes into a log line through this:
//   log->warn("msg=\"payload dropped\" payload={}", logfmt(payload));
struct LogValue {
    std::string_view text;
};
inline LogValue logfmt(std::string_view text) { return {text}; }
inline constexpr std::size_t max_log_value_bytes = 512;
std::string escape_log_value(std::string_view text);

// "Log once per kind": returns true the first time a kind is seen, so a flood of
// identical bad input yields one log line and a counter, not a log storm.
class FirstOccurrence {
public:
    bool first(const std::string& kind) {
        std::lock_guard lock(mutex_);
        if (seen_.size() >= 1024) return false;  // bounded: kinds come from input
        return seen_.insert(kind).second;
    }

private:
    std::mutex mutex_;
    std::unordered_set<std::string> seen_;
};

}  // namespace birdwatch

template <>
struct fmt::formatter<birdwatch::LogValue> : fmt::formatter<std::string_view> {
    template <typename Context>
    auto format(const birdwatch::LogValue& value, Context& context) const {
        const std::string escaped = birdwatch::escape_log_value(value.text);
        return fmt::formatter<std::string_view>::format(std::string_view(escaped), context);
    }
};
