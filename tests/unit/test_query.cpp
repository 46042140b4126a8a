#include "common/query/matcher.h"
#include "common/query/query.h"

#include <catch2/catch.hpp>

#include <fstream>
#include <iterator>

using namespace birdwatch;

namespace {

std::string canonical(const std::string& text) {
    const QueryParse p = parse_query(text);
    INFO("query: " << text << " error: " << p.error.message);
    REQUIRE(p.query);
    return p.query->canonical;
}

Tweet tweet(const std::string& text) {
    Tweet t;
    t.id = "1";
    t.text = text;
    t.lang = "en";
    t.user.screen_name = "Alice";
    return t;
}

bool match(const std::string& query, const Tweet& t) {
    const QueryParse p = parse_query(query);
    INFO("query: " << query << " error: " << p.error.message);
    REQUIRE(p.query);
    return matches(p.query->root, extract_features(t));
}

}  // namespace

TEST_CASE("tokenization splits on punctuation, symbols and separators, folds case, keeps accents", "[query]") {
    std::vector<std::string> tokens;
    tokenize("I like Coca-Cola!! #Fun @bob_1 https://t.co/x ÉTÉ été 東京タワー🐦ok — ÀÖ Ψ Привет", tokens);
    CHECK(tokens == std::vector<std::string>{"i", "like", "coca", "cola", "fun", "bob", "1", "https", "t", "co", "x",
                                             "été", "été", "東京タワー", "🐦", "ok", "àö", "ψ", "привет"});
    CHECK(fold_case("ÉTÉ") == "été");
    CHECK(fold_case("cafe") != fold_case("café"));  // accents are significant, as on X
}

TEST_CASE("every operator matches what X documents", "[query]") {
    Tweet t = tweet("I like Coca-Cola, really");
    CHECK(match("like", t));
    CHECK(match("LIKE", t));
    CHECK_FALSE(match("lik", t));                     // tokens, not substrings
    CHECK(match("\"coca cola\"", t));
    CHECK(match("coca-cola", t));                     // unquoted punctuation: the same token sequence
    CHECK_FALSE(match("\"cola coca\"", t));
    t.hashtags = {"Fun"};
    CHECK(match("#fun", t));
    CHECK_FALSE(match("#like", t));                   // hashtags come from entities, not text
    t.mentions = {"Bob"};
    CHECK(match("@bob", t));
    CHECK(match("from:alice", t));
    CHECK_FALSE(match("from:bob", t));
    t.in_reply_to = "5";
    t.in_reply_to_user = "Carol";
    CHECK(match("to:carol like", t));
    CHECK(match("like is:reply", t));
    CHECK_FALSE(match("like is:retweet", t));
    t.retweet_of = "7";
    CHECK(match("like is:retweet", t));
    CHECK(match("like lang:en", t));
    CHECK_FALSE(match("like lang:de", t));
    CHECK_FALSE(match("like has:links", t));
    t.urls = {"https://x"};
    CHECK(match("like has:links", t));
    CHECK_FALSE(match("like has:media", t));
    t.has_media = true;
    CHECK(match("like has:media", t));
    CHECK(match("like has:hashtags", t));
    CHECK(match("like -pepsi", t));
    CHECK_FALSE(match("like -cola", t));
    CHECK(match("like -(pepsi OR sprite)", t));
    CHECK_FALSE(match("like -(pepsi OR cola)", t));
}

TEST_CASE("AND binds tighter than OR, parentheses group", "[query]") {
    const Tweet apple = tweet("apple pie");
    const Tweet ipad = tweet("my ipad");
    const Tweet both = tweet("iphone ipad");
    CHECK(match("apple OR iphone ipad", apple));      // apple OR (iphone ipad)
    CHECK_FALSE(match("apple OR iphone ipad", ipad));
    CHECK(match("apple OR iphone ipad", both));
    CHECK(match("(apple OR iphone) ipad", both));
    CHECK_FALSE(match("(apple OR iphone) ipad", apple));
    CHECK(canonical("apple OR iphone ipad") == "apple OR ipad iphone");
    CHECK(canonical("(apple OR iphone) ipad") == "(apple OR iphone) ipad");
}

TEST_CASE("the canonical form normalises case, whitespace, order, nesting and duplicates", "[query]") {
    CHECK(canonical("  Cats   DOGS ") == "cats dogs");
    CHECK(canonical("dogs cats") == "cats dogs");
    CHECK(canonical("cats cats") == "cats");
    CHECK(canonical("(cats (dogs birds))") == "birds cats dogs");
    CHECK(canonical("a OR (b OR c)") == "a OR b OR c");
    CHECK(canonical("c OR b OR a") == "a OR b OR c");
    CHECK(canonical("#Cats @Bob FROM:Jack to:JILL LANG:EN is:RETWEET has:Links") ==
          "#cats @bob from:jack has:links is:retweet lang:en to:jill");
    CHECK(canonical("\"Hello,   World!\"") == "\"hello world\"");
    CHECK(canonical("\"single\"") == "single");
    CHECK(canonical("coca-cola") == "\"coca cola\"");
    CHECK(canonical("cats -(dogs OR birds)") == "-(birds OR dogs) cats");
    CHECK(canonical("cats -(-dogs)") == "cats dogs");
    CHECK(canonical("x (a OR b) (c OR d)") == "(a OR b) (c OR d) x");
    // The canonical text parses back to itself.
    for (const char* q : {"apple OR iphone ipad", "cats -(dogs OR birds) lang:en", "(a OR b) (c OR d) x",
                          "\"coca cola\" OR #fun from:bob"}) {
        const std::string once = canonical(q);
        CHECK(canonical(once) == once);
    }
}

TEST_CASE("a query id is derived from the canonical text only, identically everywhere", "[query]") {
    const auto a = parse_query("Dogs  cats");
    const auto b = parse_query("cats dogs");
    REQUIRE(a.query);
    REQUIRE(b.query);
    CHECK(a.query->id == b.query->id);
    CHECK(a.query->id == query_id("cats dogs"));
    CHECK(a.query->id.size() == query_id_length);
    CHECK(parse_query("cats OR dogs").query->id != a.query->id);
    // Pinned: a change of hash or canonical form would split the registry between versions.
    // The first 128 bits of SHA-256("cats dogs"), as `printf 'cats dogs' | sha256sum` prints them.
    CHECK(a.query->id == "qd9f4b9d9eedccec1b6f49df978f56d03");
    CHECK(parse_query("cats").query->id == query_id("cats"));
}

TEST_CASE("bad queries get a precise message and position", "[query]") {
    struct Bad {
        std::string query;
        std::string message;
        std::size_t position;
    };
    const std::vector<Bad> cases = {
        {"", "the query is empty", 0},
        {"   ", "the query is empty", 0},
        {std::string(513, 'a'), "the query is 513 characters long, the limit is 512", 0},
        {"cats (dogs", "'(' at position 5 is never closed", 5},
        {"cats (dogs OR (birds)", "'(' at position 5 is never closed", 5},
        {"cats)", "unexpected ')' at position 4: no '(' is open", 4},
        {"cats ()", "empty parentheses at position 5", 5},
        {"say \"hello", "the quote at position 4 is never closed", 4},
        {"cats \"\"", "empty phrase at position 5", 5},
        {"cats \"!!!\"", "the phrase at position 5 has no words to match", 5},
        {"OR cats", "'OR' at position 0 has nothing on its left", 0},
        {"cats OR", "'OR' at position 5 has nothing on its right", 5},
        {"cats OR OR dogs", "'OR' at position 8 follows another 'OR'", 8},
        {"(cats OR) dogs", "'OR' at position 6 has nothing on its right", 6},
        {"cats - dogs", "'-' at position 5 must be followed directly by a term or group, e.g. -cats", 5},
        {"cats -", "'-' at position 5 must be followed directly by a term or group, e.g. -cats", 5},
        {"cats --dogs", "double negation at position 5", 5},
        {"cats #", "'#' at position 5 needs a hashtag, e.g. #cats", 5},
        {"#c-ts", "'#c-ts' at position 0 is not a valid hashtag (letters, digits and _)", 0},
        {"cats @", "'@' at position 5 needs a username, e.g. @jack", 5},
        {"@bad!name", "'@bad!name' at position 0 is not a valid username (1-15 letters, digits or _; or a Bluesky handle or DID)", 0},
        {"@abcdefghijklmnop", "'@abcdefghijklmnop' at position 0 is not a valid username (1-15 letters, digits or _; or a Bluesky handle or DID)", 0},
        {"cats from:", "from: at position 5 needs a username, e.g. from:jack", 5},
        {"from:no-one", "'from:no-one' at position 0: 'no-one' is not a valid username (1-15 letters, digits or _; or a Bluesky handle or DID)", 0},
        {"cats to:", "to: at position 5 needs a username, e.g. to:jack", 5},
        {"cats lang:", "lang: at position 5 needs a language code, e.g. lang:en", 5},
        {"cats lang:english", "'lang:english' at position 5: expected a language code such as en or pt", 5},
        {"cats is:verified", "'is:verified' at position 5 is not supported: use is:retweet or is:reply", 5},
        {"cats has:geo", "'has:geo' at position 5 is not supported: use has:links, has:media or has:hashtags", 5},
        {"cats url:example.com", "operator 'url:' at position 5 is not supported (supported: from: to: lang: is: has:)", 5},
        {"-cats", "the query only excludes: add at least one term to match, e.g. cats -dogs", 0},
        {"-cats -dogs", "the query only excludes: add at least one term to match, e.g. cats -dogs", 0},
        {"lang:en", "'lang:en' at position 0 cannot stand alone: combine it with a keyword, \"phrase\", #hashtag, @mention, from: or to:", 0},
        {"is:retweet has:media", "'has:media is:retweet' at position 0 cannot stand alone: combine it with a keyword, \"phrase\", #hashtag, @mention, from: or to:", 0},
        {"cats OR -dogs", "'-dogs' at position 8 cannot stand alone in an OR: each alternative needs a keyword, \"phrase\", #hashtag, @mention, from: or to:", 8},
        {"cats OR lang:en", "'lang:en' at position 8 cannot stand alone in an OR: each alternative needs a keyword, \"phrase\", #hashtag, @mention, from: or to:", 8},
        {"cats AND dogs", "'AND' at position 5: there is no AND operator, terms separated by spaces must all match already", 5},
        {"cats !!!", "'!!!' at position 5 has no words to match", 5},
        {"((((((((((( cats )))))))))))", "parentheses nested deeper than 10 levels at position 10", 10},
        {"cats\x01", "control character at position 4", 4},
        {"caf\xC3 dogs", "the query is not valid UTF-8 (at position 3)", 3},
        {"été \xFF", "the query is not valid UTF-8 (at position 4)", 4},
    };
    for (const Bad& bad : cases) {
        INFO("query: " << bad.query);
        const QueryParse p = parse_query(bad.query);
        CHECK_FALSE(p.query);
        CHECK(p.error.message == bad.message);
        CHECK(p.error.position == bad.position);
    }
    CHECK(cases.size() >= 30);

    std::string many;
    for (int i = 0; i < 65; ++i) many += "w" + std::to_string(i) + " ";
    const QueryParse p = parse_query(many);
    CHECK_FALSE(p.query);
    CHECK(p.error.message == "the query has more than 64 terms (at position 246)");
}

TEST_CASE("a query whose canonical text would pass the length limit is refused, so every canonical text parses "
          "back to itself (found by fuzz_query)",
          "[query]") {
    std::ifstream in(BIRDWATCH_SOURCE_DIR "/tests/fuzz/corpus/query/regression-canonical-too-long", std::ios::binary);
    const std::string found((std::istreambuf_iterator<char>(in)), {});
    REQUIRE(found.size() > 400);
    const QueryParse parsed = parse_query(found);
    REQUIRE_FALSE(parsed.query);
    CHECK(parsed.error.message.find("once normalised, the limit is 512") != std::string::npos);
    // Quoting makes a canonical text longer than its input ("a1%-b1" becomes "\"a1 b1\""):
    // within the limit it parses back to itself, beyond it the query is refused.
    const auto phrases = [](int n) {
        std::string text;
        for (int i = 0; i < n; ++i) text += "a" + std::to_string(i) + "%-b" + std::to_string(i) + " ";
        return text;
    };
    const QueryParse within = parse_query(phrases(40));
    REQUIRE(within.query);
    CHECK(within.query->canonical.size() > phrases(40).size() - 1);
    const QueryParse again = parse_query(within.query->canonical);
    REQUIRE(again.query);
    CHECK(again.query->canonical == within.query->canonical);
    REQUIRE(phrases(55).size() <= 512);
    CHECK_FALSE(parse_query(phrases(55)).query);
}
