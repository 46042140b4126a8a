#pragma once
// Turns one line of a stream or replay file into Tweets, with simdjson On-Demand.
// Recognises classic v1.1 tweet objects, X API v2 stream payloads
// ({"data":{..},"includes":..}), v2 pages ({"data":[..]}), bare v2 tweets, and
// control messages of both APIs. Errors are values: one bad line never throws.

#include "common/tweet.h"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace birdwatch {

struct ParseOutcome {
    enum class Kind { tweets, control, blank, malformed };
    ParseOutcome(Kind kind_ = Kind::malformed, const char* detail_ = "", std::string deleted = {})
        : kind(kind_), detail(detail_), deleted_id(std::move(deleted)) {}
    Kind kind = Kind::malformed;
    // control: the message kind ("delete", "limit", "warning", "disconnect", "error", ...);
    // malformed: why. Always a static string.
    const char* detail = "";
    // control "delete" (v1.1 delete notice, v2 compliance delete event): the deleted tweet's id.
    std::string deleted_id;
};

class TweetParser {
public:
    TweetParser();
    ~TweetParser();
    TweetParser(const TweetParser&) = delete;
    TweetParser& operator=(const TweetParser&) = delete;

    // Appends every tweet found in `line` to `out`.
    ParseOutcome parse(std::string_view line, std::vector<Tweet>& out);

private:
    struct State;
    std::unique_ptr<State> state_;
};

// "Thu Nov 05 05:05:39 +0000 2015" (v1.1) or "2021-04-01T15:52:31.000Z" (v2) -> epoch ms; -1 if neither.
std::int64_t parse_twitter_time(std::string_view text);

}  // namespace birdwatch
