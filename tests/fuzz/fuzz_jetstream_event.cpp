// Jetstream events (any bytes) to what the source does with them: never a crash, memory
// stays within its bound, and a post survives the trip the pipeline gives it (our
// published form, parsed again) unchanged.

#include "common/tweet.h"
#include "common/tweet_parser.h"
#include "ingest/jetstream/mapper.h"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

using namespace birdwatch;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static JetstreamMapper mapper(64);  // small: evictions happen, and deletes and quotes meet them
    static TweetParser parser;
    const JetstreamEvent event = mapper.map({reinterpret_cast<const char*>(data), size});
    if (mapper.remembered_posts() > 64 || mapper.known_handles() > 64) std::abort();
    if (event.kind != JetstreamEvent::Kind::post) return 0;
    std::string line;
    append_tweet_json(line, event.tweet);
    std::vector<Tweet> again;
    if (parser.parse(line, again).kind != ParseOutcome::Kind::tweets || again.size() != 1 || !(again[0] == event.tweet))
        std::abort();
    return 0;
}
