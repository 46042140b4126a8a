// The tokenizer and case folding against ICU's own high-level APIs, over every real
// tweet in the shared data: a regular expression over Unicode properties finds the
// words and symbols, UnicodeString::foldCase folds them (full folding). The product
// walks code points with per-character properties; the two must agree everywhere.

#include "common/query/matcher.h"
#include "common/query/query.h"
#include "common/query/tokens.h"
#include "common/tweet_parser.h"
#include "tests/support/shared_data.h"

#include <catch2/catch.hpp>
#include <unicode/regex.h>
#include <unicode/unistr.h>

#include <memory>

using namespace birdwatch;

namespace {

std::string utf8(const icu::UnicodeString& s) {
    std::string out;
    s.toUTF8String(out);
    return out;
}

std::string icu_fold(const std::string& text) {
    icu::UnicodeString s = icu::UnicodeString::fromUTF8(text);
    return utf8(s.foldCase(U_FOLD_CASE_DEFAULT));
}

// X: words split on punctuation, symbols and separators; an emoji (a pictographic
// symbol) is a keyword; joiners, variation selectors and skin tones neither split nor count.
class IcuTokenizer {
public:
    IcuTokenizer() {
        UErrorCode status = U_ZERO_ERROR;
        ignorable_.reset(icu::RegexPattern::compile(
            u"[\\p{Cf}\\p{Variation_Selector}\\p{Emoji_Modifier}]", 0, status));
        token_.reset(icu::RegexPattern::compile(u"[\\p{L}\\p{M}\\p{N}]+|[\\p{So}-[\\x{FFFD}]]", 0, status));
        REQUIRE(U_SUCCESS(status));
    }
    std::vector<std::string> tokens(const std::string& text) {
        UErrorCode status = U_ZERO_ERROR;
        const icu::UnicodeString input = icu::UnicodeString::fromUTF8(text);
        std::unique_ptr<icu::RegexMatcher> skip(ignorable_->matcher(input, status));
        const icu::UnicodeString kept = skip->replaceAll(u"", status);
        std::unique_ptr<icu::RegexMatcher> words(token_->matcher(kept, status));
        std::vector<std::string> out;
        while (words->find(status)) {
            icu::UnicodeString word = words->group(status);
            out.push_back(utf8(word.foldCase(U_FOLD_CASE_DEFAULT)));
        }
        REQUIRE(U_SUCCESS(status));
        return out;
    }

private:
    std::unique_ptr<icu::RegexPattern> ignorable_, token_;
};

std::vector<Tweet> shared_tweets() {
    std::vector<Tweet> tweets;
    TweetParser parser;
    for (const char* file : {"v1-stream.jsonl", "v1-rest.jsonl", "v1-stream-legacy.jsonl", "v1-sequence-filter.jsonl",
                             "v1-sequence-sample.jsonl", "v2-tweets.jsonl", "v2-pages.jsonl", "v2-stream.jsonl"})
        for (const auto& line : test::shared_lines(file)) parser.parse(line, tweets);
    REQUIRE(tweets.size() > 7000);  // the shared folder is whole
    return tweets;
}

}  // namespace

TEST_CASE("tokenizer and case folding agree with ICU over every shared real tweet", "[query][icu][shared-data]") {
    SKIP_UNLESS_SHARED_FILE(test::shared_tweets_path("v1-stream.jsonl"));
    const std::vector<Tweet> tweets = shared_tweets();
    IcuTokenizer icu;
    std::size_t texts = 0, tokens = 0, non_ascii = 0, symbols = 0, disagreements = 0;
    const auto compare = [&](const std::string& text) {
        std::vector<std::string> ours;
        tokenize(text, ours);
        const std::vector<std::string> theirs = icu.tokens(text);
        ++texts;
        tokens += ours.size();
        for (const auto& t : ours) {
            non_ascii += std::any_of(t.begin(), t.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
            symbols += t.size() == 4 && static_cast<unsigned char>(t[0]) == 0xF0;  // one astral code point: emoji
        }
        if (ours != theirs && ++disagreements <= 5) {
            INFO("text: " << text);
            CHECK(ours == theirs);
        }
        CHECK(fold_case(text) == icu_fold(text));
    };
    for (const Tweet& t : tweets) {
        compare(t.text);
        if (t.quoted) compare(t.quoted->text);
    }
    CHECK(disagreements == 0);
    CHECK(texts > 8000);
    CHECK(tokens > 100000);
    CHECK(non_ascii > 1000);  // the corpus exercises other scripts, not just ASCII
    CHECK(symbols > 0);
}

TEST_CASE("every hashtag X gave in the shared tweets is a valid query that matches its tweet", "[query][shared-data]") {
    SKIP_UNLESS_SHARED_FILE(test::shared_tweets_path("v1-stream.jsonl"));
    const std::vector<Tweet> tweets = shared_tweets();
    std::size_t checked = 0, with_underscore = 0, non_ascii = 0;
    for (const Tweet& t : tweets) {
        const TweetFeatures features = extract_features(t);
        for (const auto& tag : t.hashtags) {
            const QueryParse parse = parse_query("#" + tag);
            INFO("#" << tag << ": " << parse.error.message);
            REQUIRE(parse.query);
            CHECK(matches(parse.query->root, features));
            ++checked;
            with_underscore += tag.find('_') != std::string::npos;
            non_ascii += std::any_of(tag.begin(), tag.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
        }
    }
    CHECK(checked > 3000);
    CHECK(with_underscore > 10);
    CHECK(non_ascii > 50);
}

TEST_CASE("X's word boundaries and case in every script, emoji as keywords", "[query][icu]") {
    const auto words = [](const std::string& text) {
        std::vector<std::string> out;
        tokenize(text, out);
        return out;
    };
    CHECK(words("مرحبا،عالم") == std::vector<std::string>{"مرحبا", "عالم"});           // Arabic comma
    CHECK(words("東京。大阪、「京都」") == std::vector<std::string>{"東京", "大阪", "京都"});  // CJK punctuation
    CHECK(words("नमस्ते।दुनिया") == std::vector<std::string>{"नमस्ते", "दुनिया"});      // danda; marks stay in words
    CHECK(words("Ήρθε ΣΟΦΊΑ") == std::vector<std::string>{"ήρθε", "σοφία"});          // Greek capitals with accents
    CHECK(words("STRASSE straße") == std::vector<std::string>{"strasse", "strasse"});  // full folding
    CHECK(words("lol😂😂 👍🏽ok") == std::vector<std::string>{"lol", "😂", "😂", "👍", "ok"});
    CHECK(words("Q&A <b>") == std::vector<std::string>{"q", "a", "b"});
    const QueryParse emoji = parse_query("😂");
    REQUIRE(emoji.query);
    CHECK(emoji.query->canonical == "😂");
    CHECK(parse_query("#black_friday").query);
    CHECK(parse_query("#100DaysOfCode_2024").query);
    CHECK(parse_query("#日本語").query);
    CHECK(parse_query("#مرحبا").query);
    CHECK_FALSE(parse_query("#c-ts").query);
    CHECK_FALSE(parse_query("#😂").query);
}
