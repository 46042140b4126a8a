#pragma once
// Bluesky Jetstream v1 events, made to order: for the Jetstream stand-in's tests and the
// Jetstream benchmark. Facets are found in the text as a Bluesky client would write
// them: #tags, @handles (with a DID derived from the handle) and http(s) links, each
// with its UTF-8 byte range.

#include <cstdint>
#include <string>
#include <vector>

namespace birdwatch::workload {

struct JetstreamPost {
    std::string did, rkey, text;
    std::string lang = "en";
    std::string reply_parent_uri;  // at://... of the parent, for a reply
    std::string quote_uri;         // at://... of a quoted post
    bool quote_with_media = false; // recordWithMedia (with images) instead of record
    bool images = false;
    std::string external_uri;      // an external link card
    std::string created_at;        // empty: derived from the event's time_us
};

// A post with only text (and a language): replies, quotes and embeds are set on it after.
JetstreamPost plain_post(std::string did, std::string rkey, std::string text, std::string lang = "en");

std::string did_for(const std::string& name);  // a stable did:plc for a name
std::string tid_for(std::int64_t time_us, unsigned clock_id);  // a Bluesky TID (13 base32-sortable chars)
std::string at_uri(const std::string& did, const std::string& rkey);

std::string jetstream_post_event(std::int64_t time_us, const JetstreamPost& post);
std::string jetstream_delete_event(std::int64_t time_us, const std::string& did, const std::string& rkey);
std::string jetstream_identity_event(std::int64_t time_us, const std::string& did, const std::string& handle);
std::string jetstream_like_event(std::int64_t time_us, const std::string& did, const std::string& subject_uri);

// `count` posts, one every `step_us` from `first_time_us`, their texts taken in turn from
// `texts`; about one in five replies to an earlier post, one in six quotes one (half of
// those with media), one in eight carries images or a link card, and some are in
// Japanese, Russian or Arabic with emoji. Every tenth event after the posts started is a
// like (to be ignored). Deterministic for a seed.
std::vector<JetstreamPost> generated_posts(std::size_t count, std::uint64_t seed, const std::vector<std::string>& texts);
std::vector<std::string> jetstream_events(const std::vector<JetstreamPost>& posts, std::int64_t first_time_us,
                                          std::int64_t step_us, bool with_likes = true);

}  // namespace birdwatch::workload
