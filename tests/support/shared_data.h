#pragma once
// The real tweet objects in ../shared/data/tweets/ and the recorded Jetstream events in
// ../shared/data/jetstream/ are optional: a user's clone has no ../shared. A test that is
// about them skips without them (SKIP_TEST); a test that only wants realistic input falls
// back to generated lines and says so.

#include "tests/support/skip.h"

#include <catch2/catch.hpp>

#include <fstream>
#include <string>
#include <vector>

namespace birdwatch::test {

inline std::string shared_tweets_path(const std::string& file) {
    return std::string(BIRDWATCH_SHARED_DATA_DIR) + "/" + file;
}
inline std::string shared_jetstream_path() {
    return std::string(BIRDWATCH_SHARED_DATA_DIR) + "/../jetstream/jetstream-v1-events.jsonl";
}

inline bool shared_file_present(const std::string& path) { return std::ifstream(path).good(); }

// The file's lines; none when it is absent.
inline std::vector<std::string> lines_of(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(std::move(line));
    return lines;
}

inline std::vector<std::string> shared_lines(const std::string& file) { return lines_of(shared_tweets_path(file)); }
inline std::vector<std::string> shared_jetstream_lines() { return lines_of(shared_jetstream_path()); }

}  // namespace birdwatch::test

// The first statement of a test case about the shared tweets or the recorded Jetstream events.
#define SKIP_UNLESS_SHARED_FILE(path)                                                          \
    do {                                                                                       \
        if (!::birdwatch::test::shared_file_present(path))                                     \
            SKIP_TEST(std::string("the shared data file ") + (path) +                          \
                      " is not there (../shared/ beside the checkout; CI has it)");            \
    } while (false)
