// Config files for both daemons (--config FILE): any content is either a working
// configuration or a ConfigError naming the problem; no other exception escapes.

#include "fanout/fanout_config.h"
#include "ingest/ingest_config.h"

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

using namespace birdwatch;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::string path = "/tmp/birdwatch-fuzz-config-" + std::to_string(::getpid()) + ".json";
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    }
    const auto no_env = [](const char*) -> const char* { return nullptr; };
    try {
        const ConfigResult loaded = load_config(ingest_config_spec(), {"--config", path}, no_env);
        (void)to_ingest_config(loaded.values);
    } catch (const ConfigError&) {
    }
    try {
        const ConfigResult loaded = load_config(fanout_config_spec(), {"--config", path}, no_env);
        (void)to_fanout_config(loaded.values);
    } catch (const ConfigError&) {
    }
    return 0;
}
