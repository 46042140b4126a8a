#pragma once
// The ingest's store accounting as one /metrics scrape shows it:
// accepted = stored + rejected + duplicates + deletions + pending must hold in every scrape.

#include "tests/support/process.h"

#include <cstdint>
#include <string>

namespace birdwatch::test {

struct StoreBooks {
    std::uint64_t accepted = 0, stored = 0, rejected = 0, duplicates = 0, deletions = 0, pending = 0;
    bool scraped = false;

    bool balanced() const { return scraped && accepted == stored + rejected + duplicates + deletions + pending; }
    std::string describe() const {
        return "accepted=" + std::to_string(accepted) + " stored=" + std::to_string(stored) +
               " rejected=" + std::to_string(rejected) + " duplicates=" + std::to_string(duplicates) + " deletions=" + std::to_string(deletions) +
               " spool_records=" + std::to_string(pending);
    }
};

inline StoreBooks scrape_store_books(unsigned short port) {
    const std::string body = http_get(port, "/metrics").body;
    const auto read = [&](const std::string& series, bool& found) -> std::uint64_t {
        const auto at = body.find("\n" + series + " ");
        if (at == std::string::npos) {
            found = false;
            return 0;
        }
        return std::stoull(body.substr(at + series.size() + 2));
    };
    StoreBooks books;
    bool found = true;
    books.accepted = read("birdwatch_store_accepted_total", found);
    books.stored = read("birdwatch_store_stored_total", found);
    books.rejected = read("birdwatch_store_rejected_total", found);
    books.duplicates = read("birdwatch_store_duplicates_total", found);
    books.deletions = read("birdwatch_store_deletions_total", found);
    books.pending = read("birdwatch_store_spool_records", found);
    books.scraped = found;
    return books;
}

}  // namespace birdwatch::test
