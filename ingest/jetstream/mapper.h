#pragma once
// One Bluesky Jetstream v1 event (a WebSocket text frame) to what the ingest does with it.
// A post becomes a Tweet: text, langs[0], facets (UTF-8 byte ranges) as hashtags,
// mentions and links, a reply's parent, a quoted post (embed.record, recordWithMedia),
// images and video as media, external embeds as links; its id is post_id(time_us, did,
// rkey). A deleted post is named by the id it was stored under, so the mapper remembers
// the last `remember_posts` posts (also to fill in quoted posts and reply parents, which
// Jetstream names only by at:// URI, and to drop a post delivered twice). Authors are
// shown by handle when an identity event has told one, else by DID.
// Errors are values: no frame throws.

#include "common/tweet.h"

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace birdwatch {

struct JetstreamEvent {
    enum class Kind { post, post_delete, repeat, ignored, malformed };
    Kind kind = Kind::malformed;
    // repeat: "rewound" (at or before handled_through) or "post" (a post remembered);
    // ignored: what it was ("like", "repost", "follow", "other_collection", "post_update",
    // "identity", "account", "unknown_kind", "unknown_post_delete"); malformed: why. Static strings.
    const char* detail = "";
    std::int64_t time_us = 0;  // the event's cursor; 0 when it has none
    Tweet tweet;               // post
    std::string deleted_id;    // post_delete
};

class JetstreamMapper {
public:
    explicit JetstreamMapper(std::size_t remember_posts);
    ~JetstreamMapper();
    JetstreamMapper(const JetstreamMapper&) = delete;
    JetstreamMapper& operator=(const JetstreamMapper&) = delete;

    // An event at or before `handled_through` (time_us) was handled already: a repeat,
    // dropped before it changes anything.
    JetstreamEvent map(std::string_view frame, std::int64_t handled_through = 0);

    // time_us * 1024 + 10 bits of a hash of did/rkey, in decimal: time-ordered like the
    // stream, below 2^63 until the year 2255, and the same whenever the event is re-sent.
    static std::string post_id(std::int64_t time_us, std::string_view did, std::string_view rkey);
    static std::string post_url(std::string_view author, std::string_view rkey);

    std::size_t remembered_posts() const { return posts_.size(); }
    std::size_t known_handles() const { return handle_order_.size(); }

private:
    struct Remembered {
        std::string id;
        QuotedPost as_quoted;
    };
    struct State;

    const Remembered* find_post(std::string_view did, std::string_view rkey) const;
    void remember_post(std::string key, Remembered post);
    void remember_handle(std::string_view did, std::string_view handle);
    const std::string& shown_name(const std::string& did) const;  // the handle if known, else the DID

    const std::size_t capacity_;
    std::unordered_map<std::string, Remembered> posts_;  // "did/rkey"
    std::deque<std::string> order_;                       // oldest first
    std::unordered_map<std::string, std::string> handles_;
    std::deque<std::string> handle_order_;
    std::unique_ptr<State> state_;
};

}  // namespace birdwatch
