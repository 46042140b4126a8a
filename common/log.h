#pragma once
// Logging: spdlog, one line per event in logfmt (ts=... level=... logger=... msg="..." key=value),
// UTC timestamps, to stderr so systemd/journald and docker collect it.

#include <spdlog/spdlog.h>

#include <mutex>
#include <string>
#include <unordered_set>

namespace birdwatch {

// level: trace|debug|info|warn|error; throws ConfigError on anything else.
void init_logging(const std::string& program, const std::string& level);

std::shared_ptr<spdlog::logger> make_logger(const std::string& component);

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
