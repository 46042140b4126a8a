#pragma once
// What the pipeline hands on for each tweet: the tweet as it will be stored, and the
// publications to send once it is durable.

#include "common/redis_connection.h"
#include "common/store/tweet_store.h"

#include <vector>

namespace birdwatch {

struct AcceptedTweet {
    StoredTweet tweet;  // empty json: no tweet, only publications (a live marker)
    std::vector<Publication> publications;  // none when no query matched and there is no firehose
    std::int64_t position = 0;              // the source's resume point after it (StreamLine::position)
};

}  // namespace birdwatch
