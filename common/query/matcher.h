#pragma once
// Evaluates a query against a tweet. A tweet's features (token hashes, folded
// hashtags, mentions, author, reply-to) are computed once and shared by every
// query evaluated against it: by the percolator for live matches and by the
// stores for history, so both follow the same rules.

#include "common/query/query.h"
#include "common/tweet.h"

#include <algorithm>
#include <vector>

namespace birdwatch {

struct TweetFeatures {
    std::vector<TermHash> tokens;     // text tokens in order (phrases)
    std::vector<TermHash> token_set;  // sorted, unique (keywords)
    std::vector<TermHash> hashtags;   // sorted, unique, case-folded
    std::vector<TermHash> mentions;   // sorted, unique, case-folded
    TermHash from = 0;
    TermHash to = 0;                  // 0 when not a reply to a known user
    std::string lang;                 // case-folded
    TermHash lang_hash = 0;           // hash_term(lang)
    bool is_retweet = false, is_reply = false, has_links = false, has_media = false;
};

// Whether one of TweetFeatures' sorted sets holds a term.
inline bool contains_term(const std::vector<TermHash>& sorted_set, TermHash h) {
    return std::binary_search(sorted_set.begin(), sorted_set.end(), h);
}

TweetFeatures extract_features(const Tweet& tweet);
void extract_features(const Tweet& tweet, TweetFeatures& out);  // reuses out's buffers

bool matches(const QueryNode& query, const TweetFeatures& tweet);

}  // namespace birdwatch
