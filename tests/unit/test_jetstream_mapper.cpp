#include "bench/jetstream_events.h"
#include "common/tweet_parser.h"
#include "ingest/jetstream/mapper.h"
#include "tests/support/shared_data.h"

#include <catch2/catch.hpp>

#include <map>

using namespace birdwatch;
using namespace birdwatch::workload;

namespace {

constexpr std::int64_t t0 = 1783175888090631;

// What the pipeline reads back: the mapped tweet in our published form.
Tweet round_trip(const Tweet& tweet) {
    std::string json;
    append_tweet_json(json, tweet);
    TweetParser parser;
    std::vector<Tweet> out;
    const ParseOutcome outcome = parser.parse(json, out);
    REQUIRE(outcome.kind == ParseOutcome::Kind::tweets);
    REQUIRE(out.size() == 1);
    return out[0];
}

}  // namespace

TEST_CASE("jetstream: a post maps text, lang, facets, reply, quote, media and links, and ids follow time_us", "[streams]") {
    JetstreamMapper mapper(1000);
    const std::string alice = did_for("alice"), bob = did_for("bob");
    JetstreamPost original = plain_post(alice, tid_for(t0, 1), "Coffee first ☕ #MorningRitual https://example.com/brew");
    JetstreamEvent first = mapper.map(jetstream_post_event(t0, original));
    REQUIRE(first.kind == JetstreamEvent::Kind::post);
    const Tweet& a = first.tweet;
    CHECK(a.id == JetstreamMapper::post_id(t0, alice, original.rkey));
    CHECK(a.text == original.text);
    CHECK(a.lang == "en");
    CHECK(a.user.id == alice);
    CHECK(a.user.screen_name == alice);  // no handle known yet: the DID is shown
    CHECK(a.hashtags == std::vector<std::string>{"MorningRitual"});
    CHECK(a.urls == std::vector<std::string>{"https://example.com/brew"});
    CHECK(a.url == "https://bsky.app/profile/" + alice + "/post/" + original.rkey);
    CHECK(a.created_at_ms == (t0 - 1500) / 1000);
    CHECK(round_trip(a) == a);

    CHECK(mapper.map(jetstream_identity_event(t0 + 10, bob, "bob.bsky.social")).detail == std::string("identity"));
    JetstreamPost reply = plain_post(bob, tid_for(t0 + 20, 2), "@carla.example.com agreed, 東京 too 🌸 #café", "ja");
    reply.reply_parent_uri = at_uri(alice, original.rkey);
    reply.quote_uri = at_uri(alice, original.rkey);
    reply.quote_with_media = true;
    JetstreamEvent second = mapper.map(jetstream_post_event(t0 + 20, reply));
    REQUIRE(second.kind == JetstreamEvent::Kind::post);
    const Tweet& b = second.tweet;
    CHECK(b.user.screen_name == "bob.bsky.social");
    CHECK(b.lang == "ja");
    CHECK(b.mentions == std::vector<std::string>{"carla.example.com"});
    CHECK(b.hashtags == std::vector<std::string>{"café"});
    CHECK(b.in_reply_to == a.id);
    CHECK(b.in_reply_to_user == alice);
    CHECK(b.has_media);
    REQUIRE(b.quoted);
    CHECK(b.quoted->id == a.id);
    CHECK(b.quoted->text == a.text);
    CHECK(b.quoted->hashtags == a.hashtags);
    CHECK(b.quoted->url == a.url);
    CHECK(std::stoull(b.id) > std::stoull(a.id));
    CHECK(std::stoull(b.id) < (std::uint64_t{1} << 63));
    CHECK(round_trip(b) == b);

    // A mention is what its author wrote, not proof of the mentioned account's handle.
    JetstreamEvent third = mapper.map(jetstream_post_event(t0 + 30, plain_post(did_for("carla.example.com"), tid_for(t0 + 30, 3), "hi")));
    CHECK(third.tweet.user.screen_name == did_for("carla.example.com"));

    // A quote of a post never seen: a link to it, nothing to match.
    JetstreamPost unknown_quote = plain_post(bob, tid_for(t0 + 40, 4), "look");
    unknown_quote.quote_uri = at_uri(did_for("stranger"), "3kabc");
    JetstreamEvent fourth = mapper.map(jetstream_post_event(t0 + 40, unknown_quote));
    REQUIRE(fourth.tweet.quoted);
    CHECK(fourth.tweet.quoted->text.empty());
    CHECK(fourth.tweet.quoted->id == unknown_quote.quote_uri);
    CHECK(round_trip(fourth.tweet) == fourth.tweet);
    CHECK(fourth.tweet.quoted->url == "https://bsky.app/profile/" + did_for("stranger") + "/post/3kabc");
}

TEST_CASE("jetstream: deletes name the stored id, repeats and rewound events are dropped, memory is bounded", "[streams]") {
    JetstreamMapper mapper(3);
    std::vector<std::string> ids;
    for (int i = 0; i < 5; ++i) {
        const JetstreamPost post = plain_post(did_for("a"), tid_for(t0 + i, i), "post " + std::to_string(i));
        const JetstreamEvent event = mapper.map(jetstream_post_event(t0 + i, post));
        REQUIRE(event.kind == JetstreamEvent::Kind::post);
        ids.push_back(event.tweet.id);
    }
    CHECK(mapper.remembered_posts() == 3);

    const JetstreamEvent again = mapper.map(jetstream_post_event(t0 + 100, plain_post(did_for("a"), tid_for(t0 + 4, 4), "post 4")));
    CHECK(again.kind == JetstreamEvent::Kind::repeat);
    CHECK(again.detail == std::string("post"));
    const JetstreamEvent rewound = mapper.map(jetstream_post_event(t0 + 2, plain_post(did_for("z"), "3zzz", "x")), t0 + 4);
    CHECK(rewound.kind == JetstreamEvent::Kind::repeat);
    CHECK(rewound.detail == std::string("rewound"));

    const JetstreamEvent deleted = mapper.map(jetstream_delete_event(t0 + 200, did_for("a"), tid_for(t0 + 3, 3)));
    CHECK(deleted.kind == JetstreamEvent::Kind::post_delete);
    CHECK(deleted.deleted_id == ids[3]);
    CHECK(deleted.time_us == t0 + 200);
    CHECK(mapper.map(jetstream_delete_event(t0 + 201, did_for("a"), tid_for(t0 + 3, 3))).detail ==
          std::string("unknown_post_delete"));
    CHECK(mapper.map(jetstream_delete_event(t0 + 202, did_for("a"), tid_for(t0 + 0, 0))).detail ==
          std::string("unknown_post_delete"));  // forgotten: older than the 3 remembered
}

TEST_CASE("jetstream: malformed, truncated and strange events are values, never a crash", "[streams][hardening]") {
    JetstreamMapper mapper(100);
    const std::map<std::string, std::string> cases = {
        {"", "not JSON"},
        {"{\"did\":\"did:plc:x\",\"time_us\":17831758880", "not JSON"},
        {"[1,2]", "not a JSON object"},
        {R"({"did":"did:plc:x","kind":"commit"})", "no valid time_us"},
        {R"({"did":"did:plc:x","time_us":"1","kind":"commit"})", "no valid time_us"},
        {R"({"did":"did:plc:x","time_us":-5,"kind":"commit"})", "no valid time_us"},
        {R"({"did":"did:plc:x","time_us":18446744073709551615,"kind":"commit"})", "no valid time_us"},
        {R"({"time_us":1783175888090631,"kind":"commit"})", "no did"},
        {R"({"did":"did:plc:x","time_us":1783175888090631,"kind":"commit"})", "commit without a commit object"},
        {R"({"did":"did:plc:x","time_us":1783175888090631,"kind":"commit","commit":{"operation":"create"}})",
         "commit without collection, operation or rkey"},
        {R"({"did":"did:plc:x","time_us":1783175888090631,"kind":"commit","commit":{"operation":"create","collection":"app.bsky.feed.post","rkey":"3k"}})",
         "post without a record text"},
        {R"({"did":"did:plc:x","time_us":1783175888090631,"kind":"commit","commit":{"operation":"create","collection":"app.bsky.feed.post","rkey":"3k","record":{"text":7}}})",
         "post without a record text"},
        {R"({"did":"did:plc:x","time_us":1783175888090631,"kind":"surprise"})", "unknown_kind"},
        {R"({"did":"did:plc:x","time_us":1783175888090631,"kind":"identity","idantity":{}})", "identity"},
        {R"({"did":"did:plc:x","time_us":1783175888090631,"kind":"identity","identity":7})", "identity"},
        {R"({"did":"did:plc:x","time_us":1783175888090631,"kind":"commit","commit":{"operation":"update","collection":"app.bsky.feed.post","rkey":"3k","record":{"text":"edited"}}})",
         "post_update"},
        {R"({"did":"did:plc:x","time_us":1783175888090631,"kind":"commit","commit":{"operation":"create","collection":"app.bsky.feed.repost","rkey":"3k"}})",
         "repost"},
        {R"({"did":"did:plc:x","time_us":1783175888090631,"kind":"commit","commit":{"operation":"create","collection":"xyz.other","rkey":"3k"}})",
         "other_collection"},
    };
    for (const auto& [frame, why] : cases) {
        INFO(frame);
        CHECK(mapper.map(frame).detail == why);
    }
    // Facets pointing outside the text, of the wrong types, or cutting a character: the post still maps.
    const std::string hostile_facets = R"({"did":"did:plc:x","time_us":1783175888090631,"kind":"commit","commit":{"operation":"create","collection":"app.bsky.feed.post","rkey":"3k","record":{"text":"é @a.b #t","langs":[5],"facets":[{"index":{"byteStart":1,"byteEnd":999},"features":[{"$type":"app.bsky.richtext.facet#mention","did":"did:plc:m"}]},{"index":{"byteStart":1,"byteEnd":2},"features":[{"$type":"app.bsky.richtext.facet#mention","did":"did:plc:n"}]},{"index":"x","features":"y"},{"features":[{"$type":"app.bsky.richtext.facet#tag","tag":42}]},{"index":{"byteStart":-3,"byteEnd":-1},"features":[{"$type":"app.bsky.richtext.facet#link"}]}],"reply":{"parent":{"uri":"not a uri"}},"embed":{"$type":"app.bsky.embed.record","record":"nope"}}}})";
    const std::string missing_parts = R"({"did":"did:plc:x","time_us":1783175888090632,"kind":"commit","commit":{"operation":"create","collection":"app.bsky.feed.post","rkey":"3l","record":{"text":"x","reply":{"root":{}},"embed":{"$type":"app.bsky.embed.external"}}}})";
    CHECK(mapper.map(missing_parts).kind == JetstreamEvent::Kind::post);
    const JetstreamEvent event = mapper.map(hostile_facets);
    REQUIRE(event.kind == JetstreamEvent::Kind::post);
    CHECK(event.tweet.mentions == std::vector<std::string>{"did:plc:m", "did:plc:n"});
    CHECK(event.tweet.hashtags.empty());
    CHECK(event.tweet.in_reply_to.empty());
    CHECK(!event.tweet.quoted);
    CHECK(event.tweet.lang.empty());
}

TEST_CASE("jetstream: the recorded sample maps its 17 posts and counts every other event by kind", "[streams]") {
    SKIP_UNLESS_SHARED_FILE(test::shared_jetstream_path());
    const auto lines = test::shared_jetstream_lines();
    JetstreamMapper mapper(1000);
    std::map<std::string, int> kinds;
    for (const std::string& line : lines) {
        const JetstreamEvent event = mapper.map(line);
        REQUIRE(event.kind != JetstreamEvent::Kind::malformed);
        if (event.kind == JetstreamEvent::Kind::post) {
            ++kinds["post"];
            CHECK(!event.tweet.id.empty());
            CHECK(event.tweet.url.starts_with("https://bsky.app/profile/did:"));
            CHECK(round_trip(event.tweet) == event.tweet);
        } else {
            ++kinds[event.detail];
        }
    }
    CHECK(kinds["post"] == 17);
    CHECK(kinds["like"] == 105);
    CHECK(kinds["repost"] == 15);
    CHECK(kinds["follow"] == 9);
    CHECK(kinds["unknown_post_delete"] == 1);  // the deleted post was created before the recording
    CHECK(kinds["identity"] == 1);
    CHECK(kinds["account"] == 1);
    CHECK(kinds["other_collection"] == 3);
}
