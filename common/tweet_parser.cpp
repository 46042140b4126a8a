#include "common/tweet_parser.h"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <ctime>
#include <optional>

namespace birdwatch {

namespace od = simdjson::ondemand;
using simdjson::error_code;

namespace {

constexpr std::array<std::string_view, 12> control_kinds = {
    "delete", "limit", "scrub_geo", "status_withheld", "user_withheld", "disconnect",
    "warning", "control", "friends", "event", "for_user", "direct_message"};

const char* control_kind_name(std::string_view key) {
    for (auto kind : control_kinds)
        if (kind == key) return kind.data();
    return nullptr;
}

int parse_int(std::string_view s) {
    int value = -1;
    std::from_chars(s.data(), s.data() + s.size(), value);
    return value;
}

std::int64_t days_from_civil(int y, int m, int d) {
    y -= m <= 2;
    const int era = (y >= 0 ? y : y - 399) / 400;
    const int yoe = y - era * 400;
    const int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return static_cast<std::int64_t>(era) * 146097 + doe - 719468;
}

std::int64_t to_epoch_ms(int year, int month, int day, int h, int min, int sec, int ms) {
    if (year < 1970 || month < 1 || month > 12 || day < 1 || day > 31 || h < 0 || h > 23 || min < 0 || min > 59 ||
        sec < 0 || sec > 60)
        return -1;
    return ((days_from_civil(year, month, day) * 24 + h) * 60 + min) * 60000LL + sec * 1000LL + ms;
}

// Numbers as ids appear in legacy objects without id_str.
error_code read_id(od::value value, std::string& out) {
    od::json_type type;
    if (auto err = value.type().get(type)) return err;
    if (type == od::json_type::null) return simdjson::SUCCESS;
    if (type == od::json_type::number) {
        std::uint64_t n;
        if (auto err = value.get_uint64().get(n)) return err;
        out = std::to_string(n);
        return simdjson::SUCCESS;
    }
    std::string_view s;
    if (auto err = value.get_string().get(s)) return err;
    out.assign(s);
    return simdjson::SUCCESS;
}

error_code read_string(od::value value, std::string& out) {
    od::json_type type;
    if (auto err = value.type().get(type)) return err;
    if (type == od::json_type::null) return simdjson::SUCCESS;
    std::string_view s;
    if (auto err = value.get_string().get(s)) return err;
    out.assign(s);
    return simdjson::SUCCESS;
}

error_code read_int(od::value value, std::int64_t& out) {
    od::json_type type;
    if (auto err = value.type().get(type)) return err;
    if (type == od::json_type::null) return simdjson::SUCCESS;
    if (type == od::json_type::string) {  // timestamp_ms is a string in v1.1
        std::string_view s;
        if (auto err = value.get_string().get(s)) return err;
        std::from_chars(s.data(), s.data() + s.size(), out);
        return simdjson::SUCCESS;
    }
    return value.get_int64().get(out);
}

// Calls on_field(key, value) for each member; stops at the first error.
// A null member (REST payloads send "retweeted_status":null and the like) has no fields.
template <typename OnField>
error_code for_each_field(od::value value, OnField&& on_field) {
    od::json_type type;
    if (auto err = value.type().get(type)) return err;
    if (type == od::json_type::null) return simdjson::SUCCESS;
    od::object object;
    if (auto err = value.get_object().get(object)) return err;
    for (auto field : object) {
        std::string_view key;
        if (auto err = field.unescaped_key().get(key)) return err;
        od::value member;
        if (auto err = field.value().get(member)) return err;
        if (auto err = on_field(key, member)) return err;
    }
    return simdjson::SUCCESS;
}

template <typename OnElement>
error_code for_each_element(od::value value, OnElement&& on_element) {
    od::json_type type;
    if (auto err = value.type().get(type)) return err;
    if (type == od::json_type::null) return simdjson::SUCCESS;
    od::array array;
    if (auto err = value.get_array().get(array)) return err;
    for (auto element : array) {
        od::value item;
        if (auto err = element.get(item)) return err;
        if (auto err = on_element(item)) return err;
    }
    return simdjson::SUCCESS;
}

struct Entities {
    std::vector<std::string> hashtags, mentions, urls;
    bool has_media = false;
    bool present = false;
};

// v1.1: hashtags[{text}], user_mentions[{screen_name}], urls[{expanded_url}], media[..]
// v2:   hashtags[{tag}],  mentions[{username}],         urls[{expanded_url}]
error_code read_entities(od::value value, Entities& out) {
    out = Entities{};
    od::json_type type;
    if (auto err = value.type().get(type)) return err;
    out.present = type != od::json_type::null;
    return for_each_field(value, [&](std::string_view key, od::value member) -> error_code {
        if (key == "hashtags") {
            return for_each_element(member, [&](od::value item) {
                return for_each_field(item, [&](std::string_view k, od::value v) -> error_code {
                    if (k == "text" || k == "tag") return read_string(v, out.hashtags.emplace_back());
                    return simdjson::SUCCESS;
                });
            });
        }
        if (key == "user_mentions" || key == "mentions") {
            return for_each_element(member, [&](od::value item) {
                return for_each_field(item, [&](std::string_view k, od::value v) -> error_code {
                    if (k == "screen_name" || k == "username") return read_string(v, out.mentions.emplace_back());
                    return simdjson::SUCCESS;
                });
            });
        }
        if (key == "urls") {
            return for_each_element(member, [&](od::value item) {
                std::string url, expanded;
                auto err = for_each_field(item, [&](std::string_view k, od::value v) -> error_code {
                    if (k == "expanded_url") return read_string(v, expanded);
                    if (k == "url") return read_string(v, url);
                    return simdjson::SUCCESS;
                });
                if (!err) out.urls.push_back(expanded.empty() ? std::move(url) : std::move(expanded));
                return err;
            });
        }
        if (key == "media") return for_each_element(member, [&](od::value) -> error_code {
            out.has_media = true;
            return simdjson::SUCCESS;
        });
        return simdjson::SUCCESS;
    });
}

// v1.1 user object, or v2 user from includes.users.
error_code read_user(od::value value, TweetUser& user) {
    std::string image, image_https;
    auto err = for_each_field(value, [&](std::string_view key, od::value v) -> error_code {
        if (key == "id_str" || (key == "id" && user.id.empty())) return read_id(v, user.id);
        if (key == "screen_name" || key == "username") return read_string(v, user.screen_name);
        if (key == "name") return read_string(v, user.name);
        if (key == "profile_image_url_https") return read_string(v, image_https);
        if (key == "profile_image_url") return read_string(v, image);
        if (key == "followers_count") return read_int(v, user.followers_count);
        if (key == "public_metrics") {
            return for_each_field(v, [&](std::string_view k, od::value m) -> error_code {
                return k == "followers_count" ? read_int(m, user.followers_count) : simdjson::SUCCESS;
            });
        }
        return simdjson::SUCCESS;
    });
    user.profile_image_url = image_https.empty() ? std::move(image) : std::move(image_https);
    return err;
}

// Ids minted since November 2010 are Snowflakes: milliseconds since Twitter's epoch
// in the bits above 22. Used when a payload omits created_at (v2 without tweet.fields).
std::int64_t snowflake_time_ms(const std::string& id) {
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), value);
    constexpr std::uint64_t first_snowflake = 29700859247ULL;  // smaller ids are sequential
    if (ec != std::errc{} || end != id.data() + id.size() || value < first_snowflake) return 0;
    return static_cast<std::int64_t>(value >> 22) + 1288834974657LL;
}

// The API escapes &, < and > in tweet text as HTML entities; they are undone once, on
// ingest (our own published form, read back from the spool and stores, is not escaped).
void unescape_html(std::string& text) {
    if (text.find('&') == std::string::npos) return;
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        const std::string_view rest = std::string_view(text).substr(i);
        if (rest.starts_with("&amp;")) { out += '&'; i += 4; }
        else if (rest.starts_with("&lt;")) { out += '<'; i += 3; }
        else if (rest.starts_with("&gt;")) { out += '>'; i += 3; }
        else out += text[i];
    }
    text = std::move(out);
}

void add_missing(std::vector<std::string>& to, const std::vector<std::string>& from) {
    for (const auto& value : from)
        if (std::find(to.begin(), to.end(), value) == to.end()) to.push_back(value);
}

// X matches and shows a Retweet by the retweeted Post: its full text and entities (the
// wrapper's are a truncated "RT @x: ..."), under the Retweet's own id, author and time.
void take_retweeted(Tweet& retweet, Tweet original) {
    if (!original.text.empty()) retweet.text = std::move(original.text);
    add_missing(original.hashtags, retweet.hashtags);
    add_missing(original.mentions, retweet.mentions);
    add_missing(original.urls, retweet.urls);
    retweet.hashtags = std::move(original.hashtags);
    retweet.mentions = std::move(original.mentions);
    retweet.urls = std::move(original.urls);
    retweet.has_media = retweet.has_media || original.has_media;
    if (original.retweet_count) retweet.retweet_count = original.retweet_count;
    if (original.like_count) retweet.like_count = original.like_count;
    retweet.retweet_of = std::move(original.id);
    retweet.retweet_of_user = std::move(original.user.screen_name);
    if (!retweet.quoted) retweet.quoted = std::move(original.quoted);
}

QuotedPost quoted_post(Tweet quoted) {
    return {std::move(quoted.id),         std::move(quoted.text),     std::move(quoted.user.screen_name),
            std::move(quoted.user.name),  std::move(quoted.hashtags), std::move(quoted.mentions),
            std::move(quoted.urls),       quoted.has_media,           std::move(quoted.url)};
}

// Retweets and quotes nest tweet objects; deeper nesting than a retweeted quote is ignored.
constexpr int max_nested_tweets = 2;

// Collects one tweet object's fields (v1.1 or v2) in a single pass; finish() resolves
// which text and entities win, since their order in the object is not fixed.
class TweetFields {
public:
    explicit TweetFields(int depth = 0) : depth_(depth) {}

    error_code on_field(std::string_view key, od::value v) {
        if (key == "id_str") { seen_tweet_key_ = true; return read_id(v, tweet_.id); }
        if (key == "id") {
            seen_tweet_key_ = true;
            return tweet_.id.empty() ? read_id(v, tweet_.id) : simdjson::SUCCESS;
        }
        if (key == "text") return read_string(v, text_);
        if (key == "full_text") return read_string(v, full_text_);
        if (key == "created_at") return read_string(v, created_at_);
        if (key == "timestamp_ms") return read_int(v, timestamp_ms_);
        if (key == "lang") return read_string(v, tweet_.lang);
        if (key == "user") { has_user_ = true; return read_user(v, tweet_.user); }
        if (key == "author_id") return read_id(v, author_id_);
        if (key == "entities") return read_entities(v, entities_);
        if (key == "extended_entities") return read_media(v);
        if (key == "extended_tweet" || key == "note_tweet") return read_long_form(v);
        if (key == "retweeted_status") return read_nested(v, retweeted_);
        if (key == "quoted_status" || key == "quoted") return read_nested(v, quoted_);
        if (key == "retweet_of_user") return read_string(v, tweet_.retweet_of_user);
        if (key == "in_reply_to_status_id_str") return read_id(v, tweet_.in_reply_to);
        if (key == "in_reply_to_status_id" && tweet_.in_reply_to.empty()) return read_id(v, tweet_.in_reply_to);
        if (key == "in_reply_to_screen_name") return read_string(v, tweet_.in_reply_to_user);
        if (key == "in_reply_to_user_id") return read_id(v, reply_user_id_);
        if (key == "referenced_tweets") return read_referenced(v);
        // Our own published form (docs/protocol.md), read back from the spool and the stores.
        if (key == "hashtags" || key == "mentions" || key == "urls") return read_string_list(key, v);
        if (key == "retweet_of") return read_id(v, tweet_.retweet_of);
        if (key == "in_reply_to") return read_id(v, tweet_.in_reply_to);
        if (key == "in_reply_to_user") return read_string(v, tweet_.in_reply_to_user);
        if (key == "url") return read_string(v, tweet_.url);
        if (key == "has_media") {
            own_form_ = true;  // only our published form has it (and its text is not escaped)
            return read_bool(v, has_media_);
        }
        if (key == "attachments") return read_attachments(v);
        if (key == "delete") return read_deletion(v);
        // v1.1 and our form at the top level; v2 in public_metrics.
        if (key == "retweet_count") return read_count(v, tweet_.retweet_count);
        if (key == "favorite_count" || key == "like_count") return read_count(v, tweet_.like_count);
        if (key == "public_metrics")
            return for_each_field(v, [&](std::string_view k, od::value m) -> error_code {
                if (k == "retweet_count") return read_count(m, tweet_.retweet_count);
                if (k == "like_count") return read_count(m, tweet_.like_count);
                return simdjson::SUCCESS;
            });
        return simdjson::SUCCESS;
    }

    bool has_id() const { return !tweet_.id.empty(); }
    bool seen_tweet_key() const { return seen_tweet_key_; }
    bool has_user() const { return has_user_; }
    const std::string& author_id() const { return author_id_; }
    const std::string& reply_user_id() const { return reply_user_id_; }
    const std::string& quoted_id() const { return quoted_id_; }
    const std::string& deleted_id() const { return deleted_id_; }

    Tweet finish() {
        if (!long_text_.empty())
            tweet_.text = std::move(long_text_);
        else if (!full_text_.empty())
            tweet_.text = std::move(full_text_);
        else
            tweet_.text = std::move(text_);
        if (!own_form_) unescape_html(tweet_.text);
        Entities& chosen = long_entities_.present ? long_entities_ : entities_;
        tweet_.hashtags = std::move(chosen.hashtags);
        tweet_.mentions = std::move(chosen.mentions);
        tweet_.urls = std::move(chosen.urls);
        tweet_.has_media = has_media_ || entities_.has_media || long_entities_.has_media;
        // v1.1 created_at has whole seconds; timestamp_ms, where sent, is exact.
        const std::int64_t parsed = parse_twitter_time(created_at_);
        tweet_.created_at_ms = timestamp_ms_ > 0 ? timestamp_ms_ : parsed >= 0 ? parsed : snowflake_time_ms(tweet_.id);
        if (tweet_.user.id.empty()) tweet_.user.id = author_id_;
        if (quoted_) tweet_.quoted = quoted_post(std::move(*quoted_));
        if (retweeted_) take_retweeted(tweet_, std::move(*retweeted_));
        return std::move(tweet_);
    }

private:
    error_code read_long_form(od::value v) {
        return for_each_field(v, [&](std::string_view k, od::value m) -> error_code {
            if (k == "full_text" || k == "text") return read_string(m, long_text_);
            if (k == "entities") return read_entities(m, long_entities_);
            if (k == "extended_entities") return read_media(m);
            return simdjson::SUCCESS;
        });
    }

    error_code read_media(od::value v) {
        Entities extended;
        auto err = read_entities(v, extended);
        has_media_ |= extended.has_media;
        return err;
    }

    // v1.1 {"delete":{"status":{"id_str":..}}}; v2 compliance {"delete":{"tweet":{"id":..}}}
    error_code read_deletion(od::value v) {
        return for_each_field(v, [&](std::string_view k, od::value m) -> error_code {
            if (k != "status" && k != "tweet") return simdjson::SUCCESS;
            std::string id_str, id;
            auto err = for_each_field(m, [&](std::string_view f, od::value x) -> error_code {
                if (f == "id_str") return read_id(x, id_str);
                if (f == "id") return read_id(x, id);
                return simdjson::SUCCESS;
            });
            deleted_id_ = id_str.empty() ? std::move(id) : std::move(id_str);
            return err;
        });
    }

    error_code read_nested(od::value v, std::optional<Tweet>& out) {
        if (depth_ >= max_nested_tweets) return simdjson::SUCCESS;
        TweetFields nested(depth_ + 1);
        auto err = for_each_field(v, [&](std::string_view k, od::value m) { return nested.on_field(k, m); });
        if (!err && nested.has_id()) out = nested.finish();
        return err;
    }

    error_code read_referenced(od::value v) {
        return for_each_element(v, [&](od::value item) {
            std::string type, id;
            auto err = for_each_field(item, [&](std::string_view k, od::value m) -> error_code {
                if (k == "type") return read_string(m, type);
                if (k == "id") return read_id(m, id);
                return simdjson::SUCCESS;
            });
            if (type == "retweeted") tweet_.retweet_of = id;
            if (type == "replied_to") tweet_.in_reply_to = id;
            if (type == "quoted") quoted_id_ = id;
            return err;
        });
    }

    // Strings (our form) or entity objects (trimmed exports put entities at the top level).
    error_code read_string_list(std::string_view key, od::value v) {
        entities_.present = true;
        auto& list = key == "hashtags" ? entities_.hashtags : key == "mentions" ? entities_.mentions : entities_.urls;
        return for_each_element(v, [&](od::value item) -> error_code {
            od::json_type type;
            if (auto err = item.type().get(type)) return err;
            if (type == od::json_type::string) return read_string(item, list.emplace_back());
            std::string value, fallback;
            auto err = for_each_field(item, [&](std::string_view k, od::value m) -> error_code {
                if (k == "text" || k == "tag" || k == "screen_name" || k == "username" || k == "expanded_url")
                    return read_string(m, value);
                if (k == "url") return read_string(m, fallback);
                return simdjson::SUCCESS;
            });
            if (!err) list.push_back(value.empty() ? std::move(fallback) : std::move(value));
            return err;
        });
    }

    // A count is a non-negative integer; anything else (null, "100+") leaves it unknown.
    static error_code read_count(od::value v, std::optional<std::int64_t>& out) {
        od::json_type type;
        if (auto err = v.type().get(type)) return err;
        if (type != od::json_type::number) return simdjson::SUCCESS;
        std::int64_t value = 0;
        if (v.get_int64().get(value) || value < 0) return simdjson::SUCCESS;
        out = value;
        return simdjson::SUCCESS;
    }

    static error_code read_bool(od::value v, bool& out) {
        od::json_type type;
        if (auto err = v.type().get(type)) return err;
        if (type != od::json_type::boolean) return simdjson::SUCCESS;
        bool value = false;
        if (auto err = v.get_bool().get(value)) return err;
        out = out || value;
        return simdjson::SUCCESS;
    }

    error_code read_attachments(od::value v) {
        return for_each_field(v, [&](std::string_view k, od::value) -> error_code {
            if (k == "media_keys") has_media_ = true;
            return simdjson::SUCCESS;
        });
    }

    const int depth_;
    Tweet tweet_;
    std::optional<Tweet> retweeted_, quoted_;  // v1.1 nests them; v2 refers to includes.tweets
    std::string text_, full_text_, long_text_, created_at_, author_id_, reply_user_id_, quoted_id_, deleted_id_;
    std::int64_t timestamp_ms_ = 0;
    Entities entities_, long_entities_;
    bool has_media_ = false;
    bool has_user_ = false;
    bool seen_tweet_key_ = false;
    bool own_form_ = false;
};

}  // namespace

std::int64_t parse_twitter_time(std::string_view s) {
    static constexpr std::array<std::string_view, 12> months = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    // v1.1: "Thu Nov 05 05:05:39 +0000 2015"
    if (s.size() == 30 && s[3] == ' ' && s[19] == ' ' && s[25] == ' ') {
        int month = 0;
        for (int i = 0; i < 12; ++i)
            if (s.substr(4, 3) == months[i]) month = i + 1;
        const int offset = parse_int(s.substr(21, 4));
        const std::int64_t local = to_epoch_ms(parse_int(s.substr(26, 4)), month, parse_int(s.substr(8, 2)),
                                               parse_int(s.substr(11, 2)), parse_int(s.substr(14, 2)),
                                               parse_int(s.substr(17, 2)), 0);
        if (local < 0 || offset < 0) return -1;
        const std::int64_t offset_ms = ((offset / 100) * 60 + offset % 100) * 60000LL;
        return s[20] == '-' ? local + offset_ms : local - offset_ms;
    }
    // v2: "2021-04-01T15:52:31.000Z" (milliseconds optional)
    if (s.size() >= 20 && s[4] == '-' && s[10] == 'T' && s.back() == 'Z') {
        const int ms = s.size() >= 24 && s[19] == '.' ? parse_int(s.substr(20, 3)) : 0;
        return to_epoch_ms(parse_int(s.substr(0, 4)), parse_int(s.substr(5, 2)), parse_int(s.substr(8, 2)),
                           parse_int(s.substr(11, 2)), parse_int(s.substr(14, 2)), parse_int(s.substr(17, 2)),
                           ms < 0 ? 0 : ms);
    }
    return -1;
}

struct TweetParser::State {
    od::parser parser;
    std::string padded;  // the line copied with simdjson's required tail padding
};

TweetParser::TweetParser() : state_(std::make_unique<State>()) {}
TweetParser::~TweetParser() = default;

ParseOutcome TweetParser::parse(std::string_view line, std::vector<Tweet>& out) {
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n' || line.back() == ' ')) line.remove_suffix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty()) return {ParseOutcome::Kind::blank, "keep-alive"};
    if (line.front() != '{') return {ParseOutcome::Kind::malformed, "not a JSON object"};

    std::string& buffer = state_->padded;
    buffer.reserve(line.size() + simdjson::SIMDJSON_PADDING);
    buffer.assign(line);
    od::document document;
    if (auto err = state_->parser.iterate(buffer.data(), buffer.size(), buffer.capacity()).get(document))
        return {ParseOutcome::Kind::malformed, simdjson::error_message(err)};
    od::value root;
    if (auto err = document.get_value().get(root)) return {ParseOutcome::Kind::malformed, simdjson::error_message(err)};

    TweetFields single;
    std::vector<TweetFields> envelope;  // v2 "data": one object, or an array of them (a page)
    std::vector<TweetUser> users;       // v2 includes.users
    std::vector<Tweet> included;        // v2 includes.tweets: the Posts retweeted, quoted, replied to
    bool has_data = false, has_errors = false;
    const char* control = nullptr;

    auto read_data_item = [&](od::value item) {
        return for_each_field(item, [&](std::string_view k, od::value v) { return envelope.back().on_field(k, v); });
    };
    error_code err = for_each_field(root, [&](std::string_view key, od::value v) -> error_code {
        if (key == "data") {
            has_data = true;
            od::json_type type;
            if (auto e = v.type().get(type)) return e;
            if (type == od::json_type::array)
                return for_each_element(v, [&](od::value item) {
                    envelope.emplace_back();
                    return read_data_item(item);
                });
            envelope.emplace_back();
            return read_data_item(v);
        }
        if (key == "includes") {
            return for_each_field(v, [&](std::string_view k, od::value m) -> error_code {
                if (k == "users")
                    return for_each_element(m, [&](od::value u) { return read_user(u, users.emplace_back()); });
                if (k == "tweets")
                    return for_each_element(m, [&](od::value t) {
                        TweetFields fields(max_nested_tweets);
                        auto e = for_each_field(t, [&](std::string_view tk, od::value tv) { return fields.on_field(tk, tv); });
                        if (!e && fields.has_id()) included.push_back(fields.finish());
                        return e;
                    });
                return simdjson::SUCCESS;
            });
        }
        if (key == "errors") { has_errors = true; return simdjson::SUCCESS; }
        if (key == "matching_rules") return simdjson::SUCCESS;
        if (const char* kind = control_kind_name(key); kind && !control) control = kind;
        return single.on_field(key, v);
    });
    if (err) return {ParseOutcome::Kind::malformed, simdjson::error_message(err)};

    if (has_data) {
        for (Tweet& tweet : included)
            for (const TweetUser& user : users)
                if (user.id == tweet.user.id) tweet.user = user;
        const auto included_tweet = [&](const std::string& id) -> const Tweet* {
            for (const Tweet& tweet : included)
                if (!id.empty() && tweet.id == id) return &tweet;
            return nullptr;
        };
        std::size_t added = 0;
        for (TweetFields& fields : envelope) {
            if (!fields.has_id()) continue;
            Tweet tweet = fields.finish();
            for (const TweetUser& user : users) {
                if (!fields.has_user() && user.id == tweet.user.id) tweet.user = user;
                if (tweet.in_reply_to_user.empty() && user.id == fields.reply_user_id())
                    tweet.in_reply_to_user = user.screen_name;
            }
            if (const Tweet* quoted = included_tweet(fields.quoted_id()); quoted && !tweet.quoted)
                tweet.quoted = quoted_post(*quoted);
            if (const Tweet* original = included_tweet(tweet.retweet_of); original && tweet.retweet_of_user.empty())
                take_retweeted(tweet, *original);
            out.push_back(std::move(tweet));
            ++added;
        }
        if (added == 0) {
            for (const TweetFields& fields : envelope)
                if (!fields.deleted_id().empty()) return {ParseOutcome::Kind::control, "delete", fields.deleted_id()};
            return {ParseOutcome::Kind::malformed, "v2 \"data\" without a tweet id"};
        }
        return {ParseOutcome::Kind::tweets, ""};
    }
    if (control && !single.has_id()) return {ParseOutcome::Kind::control, control, single.deleted_id()};
    if (has_errors && !single.has_id()) return {ParseOutcome::Kind::control, "error"};
    if (!single.has_id())
        return {ParseOutcome::Kind::malformed, single.seen_tweet_key() ? "tweet id is empty" : "no tweet id"};
    out.push_back(single.finish());
    return {ParseOutcome::Kind::tweets, ""};
}

}  // namespace birdwatch
