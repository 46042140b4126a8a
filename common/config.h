#pragma once
// Layered configuration shared by both daemons. Each daemon declares its keys as
// a JSON tree of defaults; values are then taken, later layers winning, from:
//   the defaults < the JSON file (--config FILE) < environment < command-line flags.
// Environment: <PREFIX><KEY PATH, dots as '_', upper-case>, e.g. BIRDWATCH_FANOUT_REDIS_PORT.
// Flags: --redis.port=6380 or --redis.port 6380. Unknown keys and wrong types are
// startup errors, so a typo never silently falls back to a default.

#include <nlohmann/json.hpp>

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace birdwatch {

class ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct ConfigSpec {
    std::string program;      // "birdwatch-ingest"
    std::string summary;      // one line for --help
    std::string env_prefix;   // "BIRDWATCH_INGEST_"
    nlohmann::json defaults;  // every accepted key, with its default value
    // Keys holding credentials: refused as flags (command lines are visible to every
    // user of the host), masked by --print-config and --help.
    std::vector<std::string> secret_keys = {};
};

struct ConfigResult {
    nlohmann::json values;
    bool exit_now = false;  // --help or --print-config was handled
};

using EnvLookup = std::function<const char*(const char*)>;

// Throws ConfigError with a message naming the key and the layer it came from.
ConfigResult load_config(const ConfigSpec& spec, const std::vector<std::string>& args, const EnvLookup& env);

// A defaults section shared by both daemons, with a daemon's own keys added.
inline nlohmann::json with(nlohmann::json shared, const nlohmann::json& own) {
    shared.update(own);
    return shared;
}

// Environment variable name for a dotted key path.
std::string env_name(const ConfigSpec& spec, const std::string& dotted_key);

}  // namespace birdwatch
