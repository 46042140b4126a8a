#pragma once
// The one compact tweet value every component shares, whatever API it came from.

#include <cstdint>
#include <string>
#include <vector>

namespace birdwatch {

struct TweetUser {
    std::string id;
    std::string screen_name;
    std::string name;
    std::string profile_image_url;
    std::int64_t followers_count = 0;

    bool operator==(const TweetUser&) const = default;
};

struct Tweet {
    std::string id;          // decimal id_str: tweet ids exceed 2^53
    std::string text;        // full text when the API sent an extended/long form
    std::int64_t created_at_ms = 0;
    std::string lang;
    TweetUser user;
    std::vector<std::string> hashtags;  // without '#', as the entities give them
    std::vector<std::string> mentions;  // screen names without '@'
    std::vector<std::string> urls;      // expanded where known
    std::string retweet_of;             // id of the retweeted tweet, empty if none
    std::string in_reply_to;            // id of the tweet replied to, empty if none
    std::string in_reply_to_user;       // screen name replied to, empty if none or unknown
    bool has_media = false;

    bool operator==(const Tweet&) const = default;
};

// Formats epoch milliseconds as ISO 8601 UTC with milliseconds: 2015-11-05T05:05:39.000Z.
std::string format_iso8601_ms(std::int64_t epoch_ms);

// Appends the tweet as the JSON object documented in docs/protocol.md ("tweet" field).
void append_tweet_json(std::string& out, const Tweet& tweet);

}  // namespace birdwatch
