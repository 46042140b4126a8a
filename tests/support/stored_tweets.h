#pragma once
#include "common/store/tweet_store.h"

#include <vector>

namespace birdwatch::test {

// Tweets as a store receives them: the value and its published JSON.
inline std::vector<StoredTweet> stored(const std::vector<Tweet>& tweets) {
    std::vector<StoredTweet> out;
    for (const Tweet& t : tweets) {
        out.push_back({t, {}});
        append_tweet_json(out.back().json, t);
    }
    return out;
}

}  // namespace birdwatch::test
