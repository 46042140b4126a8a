#include "bench/workload.h"
#include "ingest/percolator.h"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace birdwatch;

namespace {

ParsedQuery parsed(const std::string& text) {
    QueryParse p = parse_query(text);
    INFO(text << ": " << p.error.message);
    REQUIRE(p.query);
    return std::move(*p.query);
}

std::vector<std::string> ids(const std::vector<const std::string*>& found) {
    std::vector<std::string> out;
    for (const auto* id : found) out.push_back(*id);
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace

TEST_CASE("presearch: a conjunction is indexed under one term, a disjunction under one per alternative",
          "[percolation]") {
    CHECK(presearch_keys(parsed("cats").root).size() == 1);
    CHECK(presearch_keys(parsed("cats dogs -birds lang:en").root).size() == 1);
    CHECK(presearch_keys(parsed("cats OR dogs OR #birds").root).size() == 3);
    CHECK(presearch_keys(parsed("(a OR b) (c OR d OR e)").root).size() == 2);
    CHECK(presearch_keys(parsed("\"very exact phrase\"").root).size() == 1);
    // Its only required term would be a poor anchor with no gate: the alternatives anchor it, gated by "c".
    CHECK(presearch_keys(parsed("(a OR b) c -d").root).size() == 2);
    CHECK(presearch_keys(parsed("(a OR b) c d").root).size() == 1);
}

TEST_CASE("adding and removing queries while matching is safe, and removal is complete", "[percolation]") {
    Percolator percolator;
    const ParsedQuery cats = parsed("cats"), both = parsed("cats dogs"), any = parsed("dogs OR birds");
    CHECK(percolator.add(cats));
    CHECK_FALSE(percolator.add(cats));
    CHECK(percolator.add(both));
    CHECK(percolator.add(any));
    Tweet t;
    t.text = "cats and dogs";
    const TweetFeatures f = extract_features(t);
    std::vector<const std::string*> found;
    percolator.match(f, found);
    auto sorted = [](std::vector<std::string> v) {
        std::sort(v.begin(), v.end());
        return v;
    };
    CHECK(ids(found) == sorted({any.id, both.id, cats.id}));
    CHECK(percolator.remove(both.id));
    CHECK_FALSE(percolator.remove(both.id));
    found.clear();
    percolator.match(f, found);
    CHECK(ids(found) == sorted({any.id, cats.id}));
    CHECK(percolator.add(parsed("dogs")));  // reuses the freed slot
    found.clear();
    percolator.match(f, found);
    CHECK(found.size() == 3);
    for (const auto& q : {cats.id, any.id, parsed("dogs").id}) percolator.remove(q);
    CHECK(percolator.size() == 0);
    found.clear();
    percolator.match(f, found);
    CHECK(found.empty());
}

TEST_CASE("differential: percolator, brute force and the reference tree evaluator agree on every (query, tweet) pair",
          "[percolation]") {
    std::string source;
    const std::vector<Tweet> tweets = workload::load_tweets(BIRDWATCH_SHARED_DATA_DIR, 5000, source);
    INFO("tweets: " << source);
    workload::QueryGenerator generator(tweets, 99);
    Percolator percolator;
    std::vector<ParsedQuery> registered;  // the reference: what should be registered now
    auto add_one = [&] {
        QueryParse p = parse_query(generator.next());
        REQUIRE(p.query);  // the generator only writes valid queries
        if (percolator.add(*p.query)) registered.push_back(std::move(*p.query));
    };
    while (registered.size() < 2000) add_one();

    std::size_t pairs = 0, matched = 0, removed = 0;
    const std::uint64_t candidates_before = percolator.candidates_evaluated();
    std::vector<const std::string*> fast, slow;
    for (std::size_t i = 0; i < tweets.size(); ++i) {
        if (i % 500 == 250) {
            // Churn: remove three in five (compacting the code arena), then refill.
            std::vector<ParsedQuery> kept;
            for (std::size_t k = 0; k < registered.size(); ++k) {
                if (k % 5 < 3) {
                    REQUIRE(percolator.remove(registered[k].id));
                    ++removed;
                } else {
                    kept.push_back(std::move(registered[k]));
                }
            }
            registered = std::move(kept);
            while (registered.size() < 2000) add_one();
            REQUIRE(percolator.size() == registered.size());
        }
        const TweetFeatures f = extract_features(tweets[i]);
        fast.clear();
        slow.clear();
        percolator.match(f, fast);
        percolator.match_brute_force(f, slow);
        std::vector<std::string> reference;
        for (const auto& q : registered)
            if (matches(q.root, f)) reference.push_back(q.id);
        std::sort(reference.begin(), reference.end());
        INFO("tweet " << tweets[i].id << ": " << tweets[i].text);
        REQUIRE(ids(fast) == reference);
        REQUIRE(ids(slow) == reference);
        pairs += registered.size();
        matched += reference.size();
    }
    CHECK(pairs >= 10000000);   // 5,000 tweets x 2,000 queries
    CHECK(removed >= 10000);
    CHECK(percolator.compactions() >= 5);  // the arena was rewritten under the churn, and stayed correct
    CHECK(matched > 1000);      // the queries do match: agreement is not vacuous
    // Presearch pays: far fewer candidates than pairs.
    CHECK(percolator.candidates_evaluated() - candidates_before < pairs / 20);
}

namespace {

// Queries of many shapes built from the tweets' own tokens, common ones included, so
// that they match often: phrases inside conjunctions, lang: and flags next to terms,
// alternatives beside a single required term, negated groups.
class ShapeGenerator {
public:
    explicit ShapeGenerator(const std::vector<Tweet>& tweets) : tweets_(tweets) {}

    std::string next() {
        const Tweet& t = tweets_[random() % tweets_.size()];
        std::vector<std::string> tokens;
        tokenize(t.text, tokens);
        if (tokens.size() < 3) tokens = {"news", "today", "again"};
        auto w = [&] { return tokens[random() % tokens.size()]; };
        auto phrase = [&](std::size_t n) {
            const std::size_t at = random() % (tokens.size() - n + 1);
            std::string p = "\"" + tokens[at];
            for (std::size_t i = 1; i < n; ++i) p += " " + tokens[at + i];
            return p + "\"";
        };
        const std::string lang = "lang:" + (t.lang.size() == 2 && random() % 3 ? t.lang : std::string("en"));
        const std::string tag = t.hashtags.empty() ? "#news" : "#" + t.hashtags[random() % t.hashtags.size()];
        const std::string from = "from:" + (t.user.screen_name.empty() ? std::string("jack") : t.user.screen_name);
        switch (random() % 16) {
            case 0: return phrase(3) + " " + w();
            case 1: return w() + " " + phrase(2);
            case 2: return w() + " " + lang;
            case 3: return w() + " " + lang + " -is:retweet";
            case 4: return "(" + w() + " OR " + w() + ") " + w();
            case 5: return "(" + w() + " OR " + tag + ") " + phrase(2);
            case 6: return "(" + w() + " OR " + w() + ") " + lang;
            case 7: return from + " " + w() + " " + w();
            case 8: return w() + " " + w() + " " + w();
            case 9: return "(" + w() + " OR " + w() + ") (" + w() + " OR " + w() + ")";
            case 10: return w() + " -(" + w() + " OR " + w() + ")";
            case 11: return phrase(2) + " -" + w();
            case 12: return w() + " -" + lang;
            case 13: return "(" + w() + " " + w() + ") OR (" + w() + " " + lang + ")";
            case 14: return tag + " " + w() + " " + lang;
            default: return "(" + w() + " OR " + w() + " OR " + w() + ") " + w() + " -is:reply";
        }
    }

private:
    std::uint64_t random() { return random_.next(); }
    const std::vector<Tweet>& tweets_;
    SplitMix64 random_{5};
};

}  // namespace

TEST_CASE("differential: gated and re-anchored query shapes agree with the reference evaluator", "[percolation]") {
    std::string source;
    const std::vector<Tweet> tweets = workload::load_tweets(BIRDWATCH_SHARED_DATA_DIR, 3000, source);
    INFO("tweets: " << source);
    ShapeGenerator generator(tweets);
    Percolator percolator;
    std::vector<ParsedQuery> registered;
    std::size_t generated = 0, invalid = 0;
    while (registered.size() < 3000) {
        ++generated;
        const std::string text = generator.next();
        QueryParse p = parse_query(text);
        if (!p.query) {
            ++invalid;
            UNSCOPED_INFO(text << ": " << p.error.message);
        } else if (percolator.add(*p.query)) {
            registered.push_back(std::move(*p.query));
        }
    }
    CHECK(invalid * 100 < generated);  // the shapes are what they say (a repeated query is fine, and skipped)

    std::size_t pairs = 0, matched = 0;
    std::vector<const std::string*> fast;
    for (const Tweet& tweet : tweets) {
        const TweetFeatures f = extract_features(tweet);
        fast.clear();
        percolator.match(f, fast);
        std::vector<std::string> reference;
        for (const auto& q : registered)
            if (matches(q.root, f)) reference.push_back(q.id);
        std::sort(reference.begin(), reference.end());
        INFO("tweet " << tweet.id << ": " << tweet.text);
        REQUIRE(ids(fast) == reference);
        pairs += registered.size();
        matched += reference.size();
    }
    CHECK(pairs >= 9000000);
    CHECK(matched > 5000);
}
