// ElasticSearch's answers as the store reads them: _bulk item results and _search hits.
// Never a crash; a readable _bulk answer has exactly one result per document sent;
// a _search page never holds more tweets than hits.
// Input: [expected item count byte][response body...]

#include "common/store/elastic_store.h"

#include <cstdint>
#include <cstdlib>

using namespace birdwatch;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const std::size_t expected = data[0] % 8;
    const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
    std::vector<elastic_reply::BulkItem> items;
    if (elastic_reply::bulk_items(body, expected, items) && items.size() != expected) std::abort();
    HistoryPage page;
    if (elastic_reply::search_hits(body, expected + 1, page) && page.tweets.size() + page.skipped > size) std::abort();
    return 0;
}
