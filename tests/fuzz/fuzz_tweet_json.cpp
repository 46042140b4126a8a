// Tweet JSON (v1.1, v2 with includes, our own published form) to Tweet: never a
// crash, and every tweet read back from our own published form is the same tweet.

#include "common/tweet.h"
#include "common/tweet_parser.h"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

using namespace birdwatch;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static TweetParser parser;
    std::vector<Tweet> tweets;
    parser.parse({reinterpret_cast<const char*>(data), size}, tweets);
    for (const Tweet& tweet : tweets) {
        std::string published;
        append_tweet_json(published, tweet);
        std::vector<Tweet> again;
        if (parser.parse(published, again).kind != ParseOutcome::Kind::tweets || again.size() != 1 ||
            !(again[0] == tweet))
            std::abort();
    }
    return 0;
}
