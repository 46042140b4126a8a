#include "bench/jetstream_events.h"

#include "common/tweet.h"
#include "ingest/sources/split_mix.h"

#include <nlohmann/json.hpp>

#include <array>

namespace birdwatch::workload {

using nlohmann::json;

namespace {

bool handle_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
}
bool tag_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c >= 0x80;
}

json facet(std::size_t start, std::size_t end, json feature) {
    return {{"index", {{"byteStart", start}, {"byteEnd", end}}}, {"features", json::array({std::move(feature)})}};
}

json facets_of(const std::string& text) {
    json facets = json::array();
    for (std::size_t i = 0; i < text.size(); ++i) {
        const bool starts_word = i == 0 || text[i - 1] == ' ' || text[i - 1] == '\n';
        if (!starts_word) continue;
        if (text[i] == '#') {
            std::size_t end = i + 1;
            while (end < text.size() && tag_byte(static_cast<unsigned char>(text[end]))) ++end;
            if (end > i + 1)
                facets.push_back(facet(i, end, {{"$type", "app.bsky.richtext.facet#tag"}, {"tag", text.substr(i + 1, end - i - 1)}}));
        } else if (text[i] == '@') {
            std::size_t end = i + 1;
            while (end < text.size() && handle_char(text[end])) ++end;
            while (end > i + 1 && (text[end - 1] == '.' || text[end - 1] == '-')) --end;
            const std::string handle = text.substr(i + 1, end - i - 1);
            if (handle.find('.') != std::string::npos)
                facets.push_back(facet(i, end, {{"$type", "app.bsky.richtext.facet#mention"}, {"did", did_for(handle)}}));
        } else if (text.compare(i, 8, "https://") == 0 || text.compare(i, 7, "http://") == 0) {
            std::size_t end = text.find_first_of(" \n", i);
            if (end == std::string::npos) end = text.size();
            facets.push_back(facet(i, end, {{"$type", "app.bsky.richtext.facet#link"}, {"uri", text.substr(i, end - i)}}));
        }
    }
    return facets;
}

std::string iso_time(std::int64_t time_us) { return format_iso8601_ms(time_us / 1000); }

json commit_event(std::int64_t time_us, const std::string& did, json commit) {
    return {{"did", did}, {"time_us", time_us}, {"kind", "commit"}, {"commit", std::move(commit)}};
}

json strong_ref(const std::string& uri) { return {{"uri", uri}, {"cid", "bafyreib2rxk3rh6kzwq"}}; }

json images_embed() {
    return {{"$type", "app.bsky.embed.images"},
            {"images", json::array({{{"alt", ""}, {"image", {{"$type", "blob"}, {"mimeType", "image/jpeg"}, {"size", 1024}}}}})}};
}

}  // namespace

JetstreamPost plain_post(std::string did, std::string rkey, std::string text, std::string lang) {
    JetstreamPost post;
    post.did = std::move(did);
    post.rkey = std::move(rkey);
    post.text = std::move(text);
    post.lang = std::move(lang);
    return post;
}

std::string did_for(const std::string& name) {
    static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
    std::uint64_t hash = 0xcbf29ce484222325ULL;
    for (const unsigned char c : name) hash = (hash ^ c) * 0x100000001b3ULL;
    SplitMix64 random(hash);
    std::string did = "did:plc:";
    for (int i = 0; i < 24; ++i) did.push_back(alphabet[random.next() % 32]);
    return did;
}

std::string tid_for(std::int64_t time_us, unsigned clock_id) {
    static constexpr char alphabet[] = "234567abcdefghijklmnopqrstuvwxyz";
    std::uint64_t value = (static_cast<std::uint64_t>(time_us) << 10) | (clock_id & 1023);
    std::string tid(13, '2');
    for (int i = 12; i >= 0; --i, value >>= 5) tid[i] = alphabet[value & 31];
    return tid;
}

std::string at_uri(const std::string& did, const std::string& rkey) {
    return "at://" + did + "/app.bsky.feed.post/" + rkey;
}

std::string jetstream_post_event(std::int64_t time_us, const JetstreamPost& post) {
    json record = {{"$type", "app.bsky.feed.post"},
                   {"text", post.text},
                   {"createdAt", post.created_at.empty() ? iso_time(time_us - 1500) : post.created_at},
                   {"langs", json::array({post.lang})}};
    if (json facets = facets_of(post.text); !facets.empty()) record["facets"] = std::move(facets);
    if (!post.reply_parent_uri.empty())
        record["reply"] = {{"parent", strong_ref(post.reply_parent_uri)}, {"root", strong_ref(post.reply_parent_uri)}};
    if (!post.quote_uri.empty()) {
        if (post.quote_with_media)
            record["embed"] = {{"$type", "app.bsky.embed.recordWithMedia"},
                               {"record", {{"$type", "app.bsky.embed.record"}, {"record", strong_ref(post.quote_uri)}}},
                               {"media", images_embed()}};
        else
            record["embed"] = {{"$type", "app.bsky.embed.record"}, {"record", strong_ref(post.quote_uri)}};
    } else if (post.images) {
        record["embed"] = images_embed();
    } else if (!post.external_uri.empty()) {
        record["embed"] = {{"$type", "app.bsky.embed.external"},
                           {"external", {{"uri", post.external_uri}, {"title", "A link"}, {"description", ""}}}};
    }
    return commit_event(time_us, post.did,
                        {{"rev", tid_for(time_us, 7)},
                         {"operation", "create"},
                         {"collection", "app.bsky.feed.post"},
                         {"rkey", post.rkey},
                         {"record", std::move(record)},
                         {"cid", "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"}})
        .dump();
}

std::string jetstream_delete_event(std::int64_t time_us, const std::string& did, const std::string& rkey) {
    return commit_event(time_us, did,
                        {{"rev", tid_for(time_us, 7)}, {"operation", "delete"}, {"collection", "app.bsky.feed.post"},
                         {"rkey", rkey}})
        .dump();
}

std::string jetstream_identity_event(std::int64_t time_us, const std::string& did, const std::string& handle) {
    return json{{"did", did},
                {"time_us", time_us},
                {"kind", "identity"},
                {"identity", {{"did", did}, {"handle", handle}, {"seq", time_us / 1000}, {"time", iso_time(time_us)}}}}
        .dump();
}

std::string jetstream_like_event(std::int64_t time_us, const std::string& did, const std::string& subject_uri) {
    return commit_event(time_us, did,
                        {{"rev", tid_for(time_us, 3)},
                         {"operation", "create"},
                         {"collection", "app.bsky.feed.like"},
                         {"rkey", tid_for(time_us, 5)},
                         {"record", {{"$type", "app.bsky.feed.like"}, {"subject", strong_ref(subject_uri)}, {"createdAt", iso_time(time_us)}}},
                         {"cid", "bafyreiaxq"}})
        .dump();
}

std::vector<JetstreamPost> generated_posts(std::size_t count, std::uint64_t seed, const std::vector<std::string>& texts) {
    static const std::array<std::pair<const char*, const char*>, 4> foreign = {{
        {"ja", "東京の桜がきれい 🌸 #花見 @sakura.bsky.social"},
        {"ru", "Привет, мир! Кофе и книги ☕📚 #кофе"},
        {"ar", "مرحبا بالعالم 🌍 #قهوة https://example.org/ar"},
        {"pt", "Música boa hoje 🎶 #música @joana.example.com"},
    }};
    static const std::array<const char*, 5> handles = {"alice.bsky.social", "bob.example.com", "carla.bsky.social",
                                                       "dev-ops.example.org", "eve.bsky.social"};
    SplitMix64 random(seed);
    std::vector<JetstreamPost> posts;
    posts.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        JetstreamPost post;
        const std::uint64_t roll = random.next();
        post.did = did_for("author" + std::to_string(roll % 50));
        post.rkey = tid_for(1700000000000000 + static_cast<std::int64_t>(i) * 1000, static_cast<unsigned>(roll >> 20));
        if (i % 7 == 3) {
            const auto& [lang, text] = foreign[(i / 7) % foreign.size()];
            post.lang = lang;
            post.text = text;
        } else {
            post.text = texts.empty() ? "a post" : texts[i % texts.size()];
            if (roll % 4 == 0) post.text += " @" + std::string(handles[(roll >> 8) % handles.size()]);
            if (roll % 5 == 0) post.text += " #birdwatch";
            if (roll % 9 == 0) post.text += " https://example.com/" + std::to_string(i);
        }
        if (post.text.empty()) post.text = "(no text)";
        if (i > 0 && (roll >> 12) % 5 == 0) post.reply_parent_uri = at_uri(posts[(roll >> 16) % i].did, posts[(roll >> 16) % i].rkey);
        if (i > 0 && (roll >> 24) % 6 == 0) {
            const JetstreamPost& quoted = posts[(roll >> 28) % i];
            post.quote_uri = at_uri(quoted.did, quoted.rkey);
            post.quote_with_media = (roll >> 32) % 2 == 0;
        } else if ((roll >> 36) % 8 == 0) {
            post.images = true;
        } else if ((roll >> 40) % 8 == 0) {
            post.external_uri = "https://news.example.net/story/" + std::to_string(i);
        }
        posts.push_back(std::move(post));
    }
    return posts;
}

std::vector<std::string> jetstream_events(const std::vector<JetstreamPost>& posts, std::int64_t first_time_us,
                                          std::int64_t step_us, bool with_likes) {
    std::vector<std::string> events;
    std::int64_t time_us = first_time_us;
    for (std::size_t i = 0; i < posts.size(); ++i) {
        if (with_likes && i % 10 == 9) {
            events.push_back(jetstream_like_event(time_us, did_for("liker"), at_uri(posts[i - 1].did, posts[i - 1].rkey)));
            time_us += step_us;
        }
        events.push_back(jetstream_post_event(time_us, posts[i]));
        time_us += step_us;
    }
    return events;
}

}  // namespace birdwatch::workload
