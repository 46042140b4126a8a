// The live-search query parser: never a crash; a query that parses has a canonical
// text that parses to itself (so its id is stable), and matching it against a tweet
// terminates.

#include "common/query/matcher.h"
#include "common/query/query.h"

#include <cstdint>
#include <cstdlib>
#include <string>

using namespace birdwatch;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const TweetFeatures features = [] {
        Tweet t;
        t.id = "1";
        t.text = "Cats and dogs #pets @someone https://example.com/a caf\xc3\xa9 \xf0\x9f\x90\x88 \"quoted phrase\"";
        t.lang = "en";
        t.user.screen_name = "someone";
        t.hashtags = {"pets"};
        t.mentions = {"someone"};
        t.urls = {"https://example.com/a"};
        t.has_media = true;
        return extract_features(t);
    }();
    const QueryParse parsed = parse_query({reinterpret_cast<const char*>(data), size});
    if (!parsed.query) return 0;
    const QueryParse again = parse_query(parsed.query->canonical);
    if (!again.query || again.query->canonical != parsed.query->canonical || again.query->id != parsed.query->id)
        std::abort();
    (void)matches(parsed.query->root, features);
    return 0;
}
