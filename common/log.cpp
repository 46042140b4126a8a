#include "common/log.h"

#include "common/config.h"

#include <spdlog/sinks/stdout_sinks.h>

namespace birdwatch {

namespace {
std::shared_ptr<spdlog::sinks::sink> shared_sink() {
    static std::shared_ptr<spdlog::sinks::sink> sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    return sink;
}
}  // namespace

void init_logging(const std::string& program, const std::string& level) {
    const auto parsed = spdlog::level::from_str(level);
    if (parsed == spdlog::level::off && level != "off")
        throw ConfigError("log.level must be one of trace, debug, info, warn, error, off; got '" + level + "'");
    spdlog::set_default_logger(make_logger(program));
    spdlog::set_level(parsed);
    spdlog::set_pattern("ts=%Y-%m-%dT%H:%M:%S.%eZ level=%l logger=%n %v", spdlog::pattern_time_type::utc);
    spdlog::flush_on(spdlog::level::info);
}

std::shared_ptr<spdlog::logger> make_logger(const std::string& component) {
    if (auto existing = spdlog::get(component)) return existing;
    auto logger = std::make_shared<spdlog::logger>(component, shared_sink());
    logger->set_level(spdlog::get_level());
    logger->set_pattern("ts=%Y-%m-%dT%H:%M:%S.%eZ level=%l logger=%n %v", spdlog::pattern_time_type::utc);
    logger->flush_on(spdlog::level::info);
    spdlog::register_logger(logger);
    return logger;
}

}  // namespace birdwatch
