#include "ingest/jetstream/mapper.h"

#include "common/tweet_parser.h"

#include <simdjson.h>

#include <algorithm>

namespace birdwatch {

namespace dom = simdjson::dom;

namespace {

constexpr std::string_view post_collection = "app.bsky.feed.post";
constexpr std::int64_t max_time_us = std::int64_t{1} << 53;

std::string_view string_at(dom::element e, const char* key) {
    std::string_view value;
    if (e[key].get(value)) return {};
    return value;
}

// Of a lookup's result: a missing parent reads as absent (converting it would throw).
std::string_view string_at(simdjson::simdjson_result<dom::element> e, const char* key) {
    dom::element element;
    if (e.get(element)) return {};
    return string_at(element, key);
}

// at://did:plc:abc/app.bsky.feed.post/3k2a -> (did, rkey), when it names a post.
bool split_post_uri(std::string_view uri, std::string_view& did, std::string_view& rkey) {
    if (!uri.starts_with("at://")) return false;
    uri.remove_prefix(5);
    const std::size_t first = uri.find('/');
    if (first == std::string_view::npos) return false;
    did = uri.substr(0, first);
    const std::string_view rest = uri.substr(first + 1);
    if (!rest.starts_with(post_collection) || rest.size() <= post_collection.size() + 1 ||
        rest[post_collection.size()] != '/')
        return false;
    rkey = rest.substr(post_collection.size() + 1);
    return !did.empty() && rkey.find('/') == std::string_view::npos;
}

std::string key_of(std::string_view did, std::string_view rkey) {
    std::string key;
    key.reserve(did.size() + rkey.size() + 1);
    key.append(did).push_back('/');
    key.append(rkey);
    return key;
}

bool looks_like_handle(std::string_view s) {
    return s.size() >= 3 && s.size() <= 253 && s.find('.') != std::string_view::npos &&
           std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '.';
           });
}

const char* ignored_collection(std::string_view collection) {
    if (collection == "app.bsky.feed.like") return "like";
    if (collection == "app.bsky.feed.repost") return "repost";
    if (collection == "app.bsky.graph.follow") return "follow";
    return "other_collection";
}

void add_unique(std::vector<std::string>& to, std::string_view value) {
    if (value.empty()) return;
    if (std::find(to.begin(), to.end(), value) == to.end()) to.emplace_back(value);
}

}  // namespace

struct JetstreamMapper::State {
    dom::parser parser;
    std::string padded;
};

JetstreamMapper::JetstreamMapper(std::size_t remember_posts)
    : capacity_(std::max<std::size_t>(1, remember_posts)), state_(std::make_unique<State>()) {}
JetstreamMapper::~JetstreamMapper() = default;

std::string JetstreamMapper::post_id(std::int64_t time_us, std::string_view did, std::string_view rkey) {
    std::uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a over "did/rkey"
    const auto mix = [&](std::string_view s) {
        for (const unsigned char c : s) hash = (hash ^ c) * 0x100000001b3ULL;
    };
    mix(did);
    mix("/");
    mix(rkey);
    return std::to_string((static_cast<std::uint64_t>(time_us) << 10) | (hash & 1023));
}

std::string JetstreamMapper::post_url(std::string_view author, std::string_view rkey) {
    std::string url = "https://bsky.app/profile/";
    url.append(author).append("/post/").append(rkey);
    return url;
}

const JetstreamMapper::Remembered* JetstreamMapper::find_post(std::string_view did, std::string_view rkey) const {
    const auto it = posts_.find(key_of(did, rkey));
    return it == posts_.end() ? nullptr : &it->second;
}

void JetstreamMapper::remember_post(std::string key, Remembered post) {
    while (order_.size() >= capacity_) {  // a deleted post's key may still be queued: erase is a no-op then
        posts_.erase(order_.front());
        order_.pop_front();
    }
    order_.push_back(key);
    posts_.insert_or_assign(std::move(key), std::move(post));
}

void JetstreamMapper::remember_handle(std::string_view did, std::string_view handle) {
    if (!looks_like_handle(handle) || did.empty()) return;
    auto [it, inserted] = handles_.try_emplace(std::string(did), handle);
    if (!inserted) {
        it->second.assign(handle);
        return;
    }
    handle_order_.emplace_back(did);
    if (handle_order_.size() > capacity_) {
        handles_.erase(handle_order_.front());
        handle_order_.pop_front();
    }
}

const std::string& JetstreamMapper::shown_name(const std::string& did) const {
    const auto it = handles_.find(did);
    return it == handles_.end() ? did : it->second;
}

JetstreamEvent JetstreamMapper::map(std::string_view frame, std::int64_t handled_through) {
    JetstreamEvent event;
    std::string& buffer = state_->padded;
    buffer.reserve(frame.size() + simdjson::SIMDJSON_PADDING);
    buffer.assign(frame);
    dom::element root;
    if (state_->parser.parse(buffer.data(), buffer.size(), false).get(root)) {
        event.detail = "not JSON";
        return event;
    }
    if (!root.is_object()) {
        event.detail = "not a JSON object";
        return event;
    }
    if (root["time_us"].get(event.time_us) || event.time_us <= 0 || event.time_us >= max_time_us) {
        event.time_us = 0;
        event.detail = "no valid time_us";
        return event;
    }
    if (event.time_us <= handled_through) {
        event.kind = JetstreamEvent::Kind::repeat;
        event.detail = "rewound";
        return event;
    }
    const std::string_view did = string_at(root, "did");
    if (did.empty()) {
        event.detail = "no did";
        return event;
    }
    const std::string_view kind = string_at(root, "kind");
    event.kind = JetstreamEvent::Kind::ignored;
    if (kind == "identity") {
        remember_handle(did, string_at(root["identity"], "handle"));
        event.detail = "identity";
        return event;
    }
    if (kind == "account") {
        event.detail = "account";
        return event;
    }
    if (kind != "commit") {
        event.detail = "unknown_kind";
        return event;
    }
    dom::element commit;
    if (root["commit"].get(commit) || !commit.is_object()) {
        event.kind = JetstreamEvent::Kind::malformed;
        event.detail = "commit without a commit object";
        return event;
    }
    const std::string_view collection = string_at(commit, "collection");
    const std::string_view operation = string_at(commit, "operation");
    const std::string_view rkey = string_at(commit, "rkey");
    if (collection.empty() || operation.empty() || rkey.empty()) {
        event.kind = JetstreamEvent::Kind::malformed;
        event.detail = "commit without collection, operation or rkey";
        return event;
    }
    if (collection != post_collection) {
        event.detail = ignored_collection(collection);
        return event;
    }
    if (operation == "delete") {
        const auto it = posts_.find(key_of(did, rkey));
        if (it == posts_.end()) {
            event.detail = "unknown_post_delete";
            return event;
        }
        event.kind = JetstreamEvent::Kind::post_delete;
        event.deleted_id = std::move(it->second.id);
        posts_.erase(it);
        return event;
    }
    if (operation != "create") {
        event.detail = "post_update";  // the Bluesky app cannot edit posts; a stored post keeps its first text
        return event;
    }
    dom::element record;
    std::string_view text;
    if (commit["record"].get(record) || !record.is_object() || record["text"].get(text)) {
        event.kind = JetstreamEvent::Kind::malformed;
        event.detail = "post without a record text";
        return event;
    }
    std::string key = key_of(did, rkey);
    if (posts_.count(key)) {
        event.kind = JetstreamEvent::Kind::repeat;
        event.detail = "post";
        return event;
    }

    Tweet& tweet = event.tweet;
    tweet.id = post_id(event.time_us, did, rkey);
    tweet.text.assign(text);
    tweet.user.id.assign(did);
    const std::int64_t created = parse_twitter_time(string_at(record, "createdAt"));
    tweet.created_at_ms = created > 0 ? created : event.time_us / 1000;
    dom::array langs;
    if (!record["langs"].get(langs) && langs.size() > 0) {
        std::string_view lang;
        if (!langs.at(0).get(lang) && lang.size() <= 16) tweet.lang.assign(lang);
    }

    dom::array facets;
    if (!record["facets"].get(facets)) {
        for (dom::element facet : facets) {
            std::int64_t start = -1, end = -1;
            dom::element index;
            if (facet["index"].get(index) || index["byteStart"].get(start) || index["byteEnd"].get(end)) start = end = -1;
            const bool in_text = start >= 0 && end > start && static_cast<std::size_t>(end) <= text.size();
            dom::array features;
            if (facet["features"].get(features)) continue;
            for (dom::element feature : features) {
                const std::string_view type = string_at(feature, "$type");
                if (type == "app.bsky.richtext.facet#tag") {
                    add_unique(tweet.hashtags, string_at(feature, "tag"));
                } else if (type == "app.bsky.richtext.facet#link") {
                    add_unique(tweet.urls, string_at(feature, "uri"));
                } else if (type == "app.bsky.richtext.facet#mention") {
                    // The text shows "@handle" over the byte range; the feature gives the DID.
                    std::string_view shown = in_text ? text.substr(start, end - start) : std::string_view{};
                    if (shown.starts_with('@')) shown.remove_prefix(1);
                    const std::string_view mentioned = string_at(feature, "did");
                    // Not learnt as that DID's handle: any author can write any text over a mention.
                    add_unique(tweet.mentions, looks_like_handle(shown) ? shown : mentioned);
                }
            }
        }
    }
    tweet.user.screen_name = shown_name(tweet.user.id);

    dom::element reply;
    if (!record["reply"].get(reply)) {
        const std::string_view parent_uri = string_at(reply["parent"], "uri");
        std::string_view parent_did, parent_rkey;
        if (split_post_uri(parent_uri, parent_did, parent_rkey)) {
            const Remembered* parent = find_post(parent_did, parent_rkey);
            tweet.in_reply_to = parent ? parent->id : std::string(parent_uri);
            tweet.in_reply_to_user = shown_name(std::string(parent_did));
        }
    }

    dom::element embed;
    if (!record["embed"].get(embed)) {
        std::string_view type = string_at(embed, "$type");
        dom::element quoted_ref;  // a strongRef {uri, cid}
        bool quotes = false;
        if (type == "app.bsky.embed.record") {
            quotes = !embed["record"].get(quoted_ref);
        } else if (type == "app.bsky.embed.recordWithMedia") {
            quotes = !embed["record"]["record"].get(quoted_ref);
            if (!embed["media"].get(embed)) type = string_at(embed, "$type");
        }
        if (type == "app.bsky.embed.images" || type == "app.bsky.embed.video") tweet.has_media = true;
        if (type == "app.bsky.embed.external") add_unique(tweet.urls, string_at(embed["external"], "uri"));
        std::string_view quoted_did, quoted_rkey;
        const std::string_view quoted_uri = quotes ? string_at(quoted_ref, "uri") : std::string_view{};
        if (quotes && split_post_uri(quoted_uri, quoted_did, quoted_rkey)) {
            if (const Remembered* quoted = find_post(quoted_did, quoted_rkey)) {
                tweet.quoted = quoted->as_quoted;
            } else {
                QuotedPost unknown;  // not seen here: named by its URI, shown as a link, matched on nothing
                unknown.id.assign(quoted_uri);
                unknown.screen_name = shown_name(std::string(quoted_did));
                unknown.url = post_url(quoted_did, quoted_rkey);
                tweet.quoted = std::move(unknown);
            }
        }
    }
    tweet.url = post_url(did, rkey);

    Remembered remembered{tweet.id,
                          {tweet.id, tweet.text, tweet.user.screen_name, tweet.user.name, tweet.hashtags,
                           tweet.mentions, tweet.urls, tweet.has_media, tweet.url}};
    remember_post(std::move(key), std::move(remembered));
    event.kind = JetstreamEvent::Kind::post;
    return event;
}

}  // namespace birdwatch
