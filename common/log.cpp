#include "common/log.h"

#include "common/config.h"

#include <simdjson.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <algorithm>

namespace birdwatch {

namespace {
std::shared_ptr<spdlog::sinks::sink> shared_sink() {
    static std::shared_ptr<spdlog::sinks::sink> sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    return sink;
}
}  // namespace

std::string escape_log_value(std::string_view text) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(std::min(text.size(), max_log_value_bytes) + 2);
    out += '"';
    const std::size_t end = std::min(text.size(), max_log_value_bytes);
    for (std::size_t i = 0; i < end;) {
        const auto c = static_cast<unsigned char>(text[i]);
        auto escape_byte = [&] {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 0xF];
            ++i;
        };
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
            ++i;
        } else if (c == '\n') {
            out += "\\n";
            ++i;
        } else if (c == '\r') {
            out += "\\r";
            ++i;
        } else if (c == '\t') {
            out += "\\t";
            ++i;
        } else if (c < 0x20 || c == 0x7F) {
            escape_byte();
        } else if (c < 0x80) {
            out += static_cast<char>(c);
            ++i;
        } else {
            // A whole, valid UTF-8 sequence (the length its lead byte announces) passes;
            // any other byte is escaped.
            const std::size_t length = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
            const bool valid = i + length <= text.size() && simdjson::validate_utf8(text.data() + i, length);
            if (!valid) {
                escape_byte();
                continue;
            }
            out.append(text.data() + i, length);
            i += length;
        }
    }
    if (text.size() > end) out += "...(" + std::to_string(text.size()) + " bytes)";
    out += '"';
    return out;
}

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
