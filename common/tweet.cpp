#include "common/tweet.h"

#include "common/json_text.h"

#include <ctime>

namespace birdwatch {

std::string format_iso8601_ms(std::int64_t epoch_ms) {
    const std::time_t seconds = static_cast<std::time_t>(epoch_ms >= 0 ? epoch_ms / 1000 : (epoch_ms - 999) / 1000);
    const auto millis = static_cast<int>(epoch_ms - static_cast<std::int64_t>(seconds) * 1000);
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char buffer[32];
    const std::size_t n = std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &utc);
    std::string out(buffer, n);
    out.push_back('.');
    out.push_back(static_cast<char>('0' + millis / 100));
    out.push_back(static_cast<char>('0' + millis / 10 % 10));
    out.push_back(static_cast<char>('0' + millis % 10));
    out.push_back('Z');
    return out;
}

namespace {

void append_key(std::string& out, const char* key) {
    out.push_back('"');
    out.append(key);
    out.append("\":");
}

void append_string_or_null(std::string& out, const std::string& value) {
    if (value.empty())
        out.append("null");
    else
        json_text::append_string(out, value);
}

void append_string_array(std::string& out, const std::vector<std::string>& values) {
    out.push_back('[');
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (i) out.push_back(',');
        json_text::append_string(out, values[i]);
    }
    out.push_back(']');
}

// "hashtags":[..],"mentions":[..],"urls":[..]
void append_entities(std::string& out, const std::vector<std::string>& hashtags,
                     const std::vector<std::string>& mentions, const std::vector<std::string>& urls) {
    append_key(out, "hashtags");
    append_string_array(out, hashtags);
    out.push_back(',');
    append_key(out, "mentions");
    append_string_array(out, mentions);
    out.push_back(',');
    append_key(out, "urls");
    append_string_array(out, urls);
}

void append_user_names(std::string& out, const std::string& screen_name, const std::string& name) {
    out.append("{\"screen_name\":");
    json_text::append_string(out, screen_name);
    out.append(",\"name\":");
    json_text::append_string(out, name);
    out.push_back('}');
}

}  // namespace

std::vector<std::string> searchable_hashtags(const Tweet& t) {
    std::vector<std::string> all;
    for_each_searchable_hashtag(t, [&](const std::string& tag) { all.push_back(tag); });
    return all;
}

std::vector<std::string> searchable_mentions(const Tweet& t) {
    std::vector<std::string> all;
    for_each_searchable_mention(t, [&](const std::string& user) { all.push_back(user); });
    return all;
}

bool searchable_has_links(const Tweet& t) {
    return !t.urls.empty() || t.has_media || (t.quoted && (!t.quoted->urls.empty() || t.quoted->has_media));
}

void append_tweet_json(std::string& out, const Tweet& t) {
    out.append("{\"id\":");
    json_text::append_string(out, t.id);
    out.append(",\"text\":");
    json_text::append_string(out, t.text);
    out.append(",\"created_at\":");
    json_text::append_string(out, format_iso8601_ms(t.created_at_ms));
    out.append(",\"timestamp_ms\":");
    json_text::append_int(out, t.created_at_ms);
    out.append(",\"lang\":");
    append_string_or_null(out, t.lang);
    out.append(",\"user\":{\"id\":");
    json_text::append_string(out, t.user.id);
    out.append(",\"screen_name\":");
    json_text::append_string(out, t.user.screen_name);
    out.append(",\"name\":");
    json_text::append_string(out, t.user.name);
    out.append(",\"profile_image_url\":");
    append_string_or_null(out, t.user.profile_image_url);
    out.append(",\"followers_count\":");
    json_text::append_int(out, t.user.followers_count);
    out.append("},");
    append_entities(out, t.hashtags, t.mentions, t.urls);
    out.append(",\"retweet_of\":");
    append_string_or_null(out, t.retweet_of);
    out.append(",\"retweet_of_user\":");
    append_string_or_null(out, t.retweet_of_user);
    out.append(",\"in_reply_to\":");
    append_string_or_null(out, t.in_reply_to);
    out.append(",\"in_reply_to_user\":");
    append_string_or_null(out, t.in_reply_to_user);
    out.append(",\"has_media\":");
    out.append(t.has_media ? "true" : "false");
    for (const auto& [name, count] : {std::pair{",\"retweet_count\":", &t.retweet_count},
                                      std::pair{",\"like_count\":", &t.like_count}}) {
        out.append(name);
        if (*count) json_text::append_int(out, **count);
        else out.append("null");
    }
    out.append(",\"url\":");
    append_string_or_null(out, t.url);
    out.append(",\"quoted\":");
    if (!t.quoted) {
        out.append("null}");
        return;
    }
    const QuotedPost& q = *t.quoted;
    out.append("{\"id\":");
    json_text::append_string(out, q.id);
    out.append(",\"text\":");
    json_text::append_string(out, q.text);
    out.append(",\"user\":");
    append_user_names(out, q.screen_name, q.name);
    out.push_back(',');
    append_entities(out, q.hashtags, q.mentions, q.urls);
    out.append(",\"has_media\":");
    out.append(q.has_media ? "true" : "false");
    out.append(",\"url\":");
    append_string_or_null(out, q.url);
    out.append("}}");
}

}  // namespace birdwatch
