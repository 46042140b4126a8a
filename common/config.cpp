#include "common/config.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <iostream>

namespace birdwatch {

using nlohmann::json;

namespace {

void collect_leaves(const json& node, const std::string& prefix, std::vector<std::string>& out) {
    for (const auto& [key, value] : node.items()) {
        const std::string path = prefix.empty() ? key : prefix + "." + key;
        if (value.is_object())
            collect_leaves(value, path, out);
        else
            out.push_back(path);
    }
}

json::json_pointer pointer_for(const std::string& dotted) {
    std::string pointer = "/" + dotted;
    for (char& c : pointer)
        if (c == '.') c = '/';
    return json::json_pointer(pointer);
}

const char* type_name(const json& value) {
    if (value.is_boolean()) return "a boolean (true/false)";
    if (value.is_number_integer()) return "an integer";
    if (value.is_number()) return "a number";
    if (value.is_array()) return "a JSON array";
    return "a string";
}

// Text from the environment or a flag, converted to the type of the key's default.
json convert(const std::string& key, const std::string& text, const json& like, const std::string& origin) {
    auto fail = [&] {
        return ConfigError(key + " must be " + type_name(like) + ", got '" + text + "' (from " + origin + ")");
    };
    if (like.is_boolean()) {
        if (text == "true" || text == "1" || text == "yes" || text == "on") return true;
        if (text == "false" || text == "0" || text == "no" || text == "off") return false;
        throw fail();
    }
    if (like.is_number_integer()) {
        std::int64_t value = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc{} || end != text.data() + text.size()) throw fail();
        return value;
    }
    if (like.is_number()) {
        try {
            std::size_t used = 0;
            double value = std::stod(text, &used);
            if (used != text.size()) throw fail();
            return value;
        } catch (const std::logic_error&) {
            throw fail();
        }
    }
    if (like.is_array()) {
        json parsed = json::parse(text, nullptr, false);
        if (!parsed.is_array()) throw fail();
        return parsed;
    }
    return text;
}

bool same_kind(const json& a, const json& b) {
    if (a.is_number_integer()) return b.is_number_integer();
    if (a.is_number()) return b.is_number();
    return a.type() == b.type();
}

void merge_file(json& values, const json& defaults, const json& file, const std::string& prefix,
                const std::string& path) {
    if (!file.is_object()) throw ConfigError(path + ": " + (prefix.empty() ? "the top level" : prefix) + " must be an object");
    for (const auto& [key, value] : file.items()) {
        const std::string dotted = prefix.empty() ? key : prefix + "." + key;
        if (!defaults.contains(key)) throw ConfigError(path + ": unknown config key '" + dotted + "'");
        const json& like = defaults.at(key);
        if (like.is_object()) {
            merge_file(values[key], like, value, dotted, path);
        } else if (!same_kind(like, value)) {
            throw ConfigError(path + ": " + dotted + " must be " + type_name(like) + ", got " + value.dump());
        } else {
            values[key] = value;
        }
    }
}

void print_help(const ConfigSpec& spec, const std::vector<std::string>& keys) {
    std::cout << spec.program << " - " << spec.summary << "\n\n"
              << "Usage: " << spec.program << " [--config FILE] [--KEY=VALUE ...] [--print-config] [--help]\n\n"
              << "Every key below can be set, later layers winning, in the JSON file given by --config,\n"
              << "in the environment variable shown, or as a flag --KEY=VALUE.\n\n";
    for (const std::string& key : keys) {
        std::cout << "  --" << key << "  (env " << env_name(spec, key)
                  << ", default " << spec.defaults.at(pointer_for(key)).dump() << ")\n";
    }
}

}  // namespace

std::string env_name(const ConfigSpec& spec, const std::string& dotted_key) {
    std::string name = spec.env_prefix;
    for (char c : dotted_key) name.push_back(c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    return name;
}

ConfigResult load_config(const ConfigSpec& spec, const std::vector<std::string>& args, const EnvLookup& env) {
    std::vector<std::string> keys;
    collect_leaves(spec.defaults, "", keys);
    auto is_key = [&](const std::string& k) { return std::find(keys.begin(), keys.end(), k) != keys.end(); };

    std::string config_path;
    std::vector<std::pair<std::string, std::string>> flags;
    bool help = false, print = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (arg == "--help" || arg == "-h") { help = true; continue; }
        if (arg == "--print-config") { print = true; continue; }
        if (arg.rfind("--", 0) != 0) throw ConfigError("unexpected argument '" + arg + "' (see --help)");
        std::string name = arg.substr(2), value;
        if (auto eq = name.find('='); eq != std::string::npos) {
            value = name.substr(eq + 1);
            name.resize(eq);
        } else if (i + 1 < args.size()) {
            value = args[++i];
        } else {
            throw ConfigError("flag --" + name + " needs a value");
        }
        const bool secret =
            std::find(spec.secret_keys.begin(), spec.secret_keys.end(), name) != spec.secret_keys.end();
        if (name == "config")
            config_path = value;
        else if (secret)
            throw ConfigError(name + " is a secret: set it in the environment (" + env_name(spec, name) +
                              ") or the config file, never on the command line");
        else if (is_key(name))
            flags.emplace_back(name, value);
        else
            throw ConfigError("unknown flag --" + name + " (see --help for the keys)");
    }

    ConfigResult result{spec.defaults, false};
    if (help) {
        print_help(spec, keys);
        result.exit_now = true;
        return result;
    }
    if (!config_path.empty()) {
        std::ifstream in(config_path);
        if (!in) throw ConfigError("cannot read config file " + config_path);
        json file = json::parse(in, nullptr, false, true);
        if (file.is_discarded()) throw ConfigError(config_path + ": not valid JSON");
        merge_file(result.values, spec.defaults, file, "", config_path);
    }
    for (const std::string& key : keys) {
        const std::string name = env_name(spec, key);
        if (const char* text = env(name.c_str()))
            result.values[pointer_for(key)] = convert(key, text, spec.defaults.at(pointer_for(key)), "environment " + name);
    }
    for (const auto& [key, text] : flags)
        result.values[pointer_for(key)] = convert(key, text, spec.defaults.at(pointer_for(key)), "flag --" + key);
    if (print) {
        nlohmann::json shown = result.values;
        for (const std::string& key : spec.secret_keys) {
            auto& value = shown[pointer_for(key)];
            if (value.is_string() && !value.get<std::string>().empty()) value = "(set, not shown)";
        }
        std::cout << shown.dump(2) << "\n";
        result.exit_now = true;
    }
    return result;
}

}  // namespace birdwatch
