#include "common/query/matcher.h"

#include <algorithm>

namespace birdwatch {

namespace {

// Between a Quote Tweet's text and the quoted text: a phrase does not span the two.
// (A term hashing to it would only fail to match a phrase across that edge.)
constexpr TermHash phrase_break = 0;

void sorted_unique(std::vector<TermHash>& v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
}

bool contains_sequence(const std::vector<TermHash>& tokens, const std::vector<TermHash>& phrase) {
    return std::search(tokens.begin(), tokens.end(), phrase.begin(), phrase.end()) != tokens.end();
}

}  // namespace

void extract_features(const Tweet& tweet, TweetFeatures& f) {
    f.tokens.clear();
    for_each_searchable_text(tweet, [&](const std::string& text) {
        if (!f.tokens.empty()) f.tokens.push_back(phrase_break);
        tokenize(text, f.tokens);
    });
    f.token_set = f.tokens;
    sorted_unique(f.token_set);
    f.hashtags.clear();
    for_each_searchable_hashtag(tweet, [&](const std::string& tag) { f.hashtags.push_back(hash_term(fold_case(tag))); });
    sorted_unique(f.hashtags);
    f.mentions.clear();
    for_each_searchable_mention(tweet, [&](const std::string& user) { f.mentions.push_back(hash_term(fold_case(user))); });
    sorted_unique(f.mentions);
    f.from = hash_term(fold_case(tweet.user.screen_name));
    f.to = tweet.in_reply_to_user.empty() ? 0 : hash_term(fold_case(tweet.in_reply_to_user));
    f.lang = fold_case(tweet.lang);
    f.lang_hash = hash_term(f.lang);
    f.is_retweet = !tweet.retweet_of.empty();
    f.is_reply = !tweet.in_reply_to.empty();
    f.has_links = searchable_has_links(tweet);
    f.has_media = tweet.has_media;
}

TweetFeatures extract_features(const Tweet& tweet) {
    TweetFeatures f;
    extract_features(tweet, f);
    return f;
}

bool matches(const QueryNode& q, const TweetFeatures& t) {
    using Kind = QueryNode::Kind;
    switch (q.kind) {
        case Kind::all_of:
            return std::all_of(q.children.begin(), q.children.end(), [&](const QueryNode& c) { return matches(c, t); });
        case Kind::any_of:
            return std::any_of(q.children.begin(), q.children.end(), [&](const QueryNode& c) { return matches(c, t); });
        case Kind::negation: return !matches(q.children[0], t);
        case Kind::word: return contains_term(t.token_set, q.hashes[0]);
        case Kind::phrase: return contains_sequence(t.tokens, q.hashes);
        case Kind::hashtag: return contains_term(t.hashtags, q.hashes[0]);
        case Kind::mention: return contains_term(t.mentions, q.hashes[0]);
        case Kind::from: return t.from == q.hashes[0];
        case Kind::to: return t.to != 0 && t.to == q.hashes[0];
        case Kind::lang: return t.lang == q.tokens[0];
        case Kind::is_retweet: return t.is_retweet;
        case Kind::is_reply: return t.is_reply;
        case Kind::has_links: return t.has_links;
        case Kind::has_media: return t.has_media;
        case Kind::has_hashtags: return !t.hashtags.empty();
    }
    return false;
}

}  // namespace birdwatch
