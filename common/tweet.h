#pragma once
// The one compact tweet value every component shares, whatever API it came from.

#include <cstdint>
#include <optional>
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

// The Post a Quote Tweet quotes, as shown with it and matched with it.
struct QuotedPost {
    std::string id;
    std::string text;
    std::string screen_name;
    std::string name;
    std::vector<std::string> hashtags, mentions, urls;
    bool has_media = false;
    std::string url;  // its public web address where the id alone does not give it (Bluesky)

    bool operator==(const QuotedPost&) const = default;
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
    std::string retweet_of_user;        // its author's screen name (a Retweet's text is the original's)
    std::string in_reply_to;            // id of the tweet replied to, empty if none
    std::string in_reply_to_user;       // screen name replied to, empty if none or unknown
    bool has_media = false;
    std::optional<QuotedPost> quoted;   // a Quote Tweet's quoted Post
    // Engagement as the source last counted it (a Retweet: the original's); absent when it sent none.
    std::optional<std::int64_t> retweet_count, like_count;
    std::string url;  // the post's public web address where the id alone does not give it (Bluesky)

    bool operator==(const Tweet&) const = default;
};

// What live search matches a tweet on, in one place for the percolator and both
// stores. X matches a Quote Tweet on the quoted Post's keywords, hashtags, mentions
// and links as well as its own; has:links counts links and media.
template <typename Visit>
void for_each_searchable_text(const Tweet& tweet, Visit&& visit) {
    visit(tweet.text);
    if (tweet.quoted) visit(tweet.quoted->text);
}
template <typename Visit>
void for_each_searchable_hashtag(const Tweet& tweet, Visit&& visit) {
    for (const auto& tag : tweet.hashtags) visit(tag);
    if (tweet.quoted)
        for (const auto& tag : tweet.quoted->hashtags) visit(tag);
}
template <typename Visit>
void for_each_searchable_mention(const Tweet& tweet, Visit&& visit) {
    for (const auto& user : tweet.mentions) visit(user);
    if (tweet.quoted)
        for (const auto& user : tweet.quoted->mentions) visit(user);
}
std::vector<std::string> searchable_hashtags(const Tweet& tweet);
std::vector<std::string> searchable_mentions(const Tweet& tweet);
bool searchable_has_links(const Tweet& tweet);

// Formats epoch milliseconds as ISO 8601 UTC with milliseconds: 2015-11-05T05:05:39.000Z.
std::string format_iso8601_ms(std::int64_t epoch_ms);

// Appends the tweet as the JSON object documented in docs/protocol.md ("tweet" field).
void append_tweet_json(std::string& out, const Tweet& tweet);

// A v1.1 delete notice for a decimal tweet id: how a deletion travels as a stream line and is spooled.
inline std::string delete_notice_json(const std::string& id) {
    return R"({"delete":{"status":{"id_str":")" + id + "\"}}}";
}

}  // namespace birdwatch
