#pragma once
// The real tweet objects in ../shared/data/tweets/ are optional: tests use them when
// present and say so plainly when they are absent (a user's clone has no ../shared).

#include <catch2/catch.hpp>

#include <fstream>
#include <string>
#include <vector>

namespace birdwatch::test {

// The file's lines, or an empty vector (with a warning in the test output) when absent.
inline std::vector<std::string> shared_lines(const std::string& file) {
    std::ifstream in(std::string(BIRDWATCH_SHARED_DATA_DIR) + "/" + file);
    if (!in) {
        WARN("skipped: shared data file " << file << " not present (needs ../shared/data/tweets/)");
        return {};
    }
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(std::move(line));
    return lines;
}

// The recorded Jetstream events (../shared/data/jetstream/), or none, with a warning.
inline std::vector<std::string> shared_jetstream_lines() {
    const std::string path = std::string(BIRDWATCH_SHARED_DATA_DIR) + "/../jetstream/jetstream-v1-events.jsonl";
    std::ifstream in(path);
    if (!in) {
        WARN("skipped: the recorded Jetstream sample is not present (needs ../shared/data/jetstream/)");
        return {};
    }
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(std::move(line));
    return lines;
}

}  // namespace birdwatch::test
