// The journal and the store writer on their own threads, against a store that fails,
// stalls and refuses: every accepted tweet is stored once and in order, nothing is
// published before it is in the spool, and the books balance in every scrape.

#include "ingest/journal.h"
#include "ingest/store_writer.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

using namespace birdwatch;
using namespace std::chrono_literals;

namespace {

// Fails every 7th of its first 60 writes, stalls every 5th (so the writer's belt fills and
// batches are read back from the spool), refuses ids divisible by 97, and reports ids
// it already holds as duplicates.
class FlakyStore final : public TweetStore {
public:
    StoreStatus write(std::span<const StoredTweet> batch) override {
        const int call = ++calls_;
        if (call % 7 == 0 && call < 60) return StoreStatus::unavailable("flaky: try again");
        if (call % 5 == 0) std::this_thread::sleep_for(15ms);
        StoreStatus status;
        std::lock_guard lock(mutex_);
        for (const StoredTweet& t : batch) {
            if (std::stoll(t.tweet.id) % 97 == 0) status.rejections.push_back(t.tweet.id + ": refused by the test");
            else if (!held_.insert(t.tweet.id).second) ++status.duplicates;
            else order_.push_back(t.tweet.id);
        }
        return status;
    }
    std::optional<std::string> get(const std::string&, StoreStatus&) override { return std::nullopt; }
    std::uint64_t count(StoreStatus&) override { return 0; }
    HistoryPage history(const ParsedQuery&, const PageRequest&, StoreStatus&) override { return {}; }

    std::vector<std::string> order() const {
        std::lock_guard lock(mutex_);
        return order_;
    }

private:
    std::atomic<int> calls_{0};
    mutable std::mutex mutex_;
    std::set<std::string> held_;
    std::vector<std::string> order_;
};

AcceptedTweet accepted_tweet(long long id) {
    AcceptedTweet accepted;
    accepted.tweet.tweet.id = std::to_string(id);
    accepted.tweet.tweet.text = "tweet number " + std::to_string(id);
    accepted.tweet.tweet.created_at_ms = 1700000000000 + id;
    accepted.tweet.tweet.user = {"42", "someone", "Some One", "", 0};
    append_tweet_json(accepted.tweet.json, accepted.tweet.tweet);
    accepted.publications.push_back({std::make_shared<const std::string>("matches"), accepted.tweet.tweet.id});
    return accepted;
}

// No Catch assertion here: it runs on the scraping thread. A missing series reads as
// a huge number, which unbalances the books.
std::uint64_t series(const std::string& text, const std::string& name) {
    const auto at = text.find("\n" + name + " ");
    return at == std::string::npos ? UINT64_MAX / 4 : std::stoull(text.substr(at + name.size() + 2));
}

}  // namespace

TEST_CASE("journal + store writer: every tweet stored once and in order through failures, stalls and a full belt, "
          "published only once spooled, the books balance in every scrape",
          "[persistence][hardening][threads]") {
    test::TempDir dir;
    MetricsRegistry metrics;
    Spool spool({dir.file("spool"), SpoolOptions::Fsync::never, 0ms, 16 << 10});
    StoreLedger ledger(spool, metrics);
    FlakyStore store;
    BoundedChannel<AcceptedTweet> in(64);
    BoundedChannel<Publication> publications(100000);
    BoundedChannel<SpooledBatch> spooled(2);
    Journal journal({40, 4096}, in, publications, &ledger, &spooled, metrics);
    StoreWriterOptions writer_options;
    writer_options.batch_size = 100;
    writer_options.batch_wait = 5ms;
    StoreWriter writer(writer_options, spooled, store, spool, ledger, metrics);
    writer.start();
    journal.start();

    // Ids 1..4000 in order, every 50th followed by a repeat of an earlier id.
    std::vector<long long> fed;
    for (long long id = 1; id <= 4000; ++id) {
        fed.push_back(id);
        if (id % 50 == 0) fed.push_back(id - 25);
    }

    std::atomic<bool> feeding{true};
    std::vector<std::string> unbalanced;
    std::thread scraper([&] {
        while (feeding) {
            const std::string text = metrics.render_prometheus();
            const std::uint64_t accepted = series(text, "birdwatch_store_accepted_total");
            const std::uint64_t accounted =
                series(text, "birdwatch_store_stored_total") + series(text, "birdwatch_store_rejected_total") +
                series(text, "birdwatch_store_duplicates_total") + series(text, "birdwatch_store_spool_records");
            if (accepted != accounted)
                unbalanced.push_back(std::to_string(accepted) + " != " + std::to_string(accounted));
        }
    });
    // Durable before visible: by the time the i-th publication is out, i+1 tweets are in the spool.
    std::size_t published = 0, early = 0;
    std::thread publisher([&] {
        while (auto p = publications.pop()) {
            if (ledger.snapshot().accepted < published + 1) ++early;
            ++published;
        }
    });

    for (long long id : fed) REQUIRE(in.push(accepted_tweet(id)));
    in.close();
    journal.join();
    writer.join();
    publisher.join();
    feeding = false;
    scraper.join();

    CHECK(unbalanced.empty());
    CHECK(early == 0);
    CHECK(published == fed.size());
    std::vector<std::string> expected;
    for (long long id = 1; id <= 4000; ++id)
        if (id % 97 != 0) expected.push_back(std::to_string(id));
    CHECK(store.order() == expected);
    const StoreLedger::Snapshot books = ledger.snapshot();
    CHECK(books.accepted == fed.size());
    CHECK(books.stored == expected.size());
    CHECK(books.pending == 0);
    CHECK(books.rejected + books.duplicates == fed.size() - expected.size());
    CHECK(books.rejected >= 4000 / 97);  // refusals of replayed repeats count again, as what the store said
    // Every path was taken: failed writes, and batches read back from the spool.
    CHECK(metrics.value("birdwatch_store_write_failures_total") > 0);
    CHECK(metrics.value("birdwatch_store_read_back_batches_total") > 0);
}

TEST_CASE("store books balance from the first scrape when the last run left tweets in the spool", "[persistence]") {
    test::TempDir dir;
    const SpoolOptions options{dir.file("spool"), SpoolOptions::Fsync::never, 0ms, 1 << 20};
    std::string error;
    {
        Spool spool(options);
        REQUIRE(spool.append(std::vector<std::string>(7, "{}"), error));
    }
    Spool spool(options);
    MetricsRegistry metrics;
    StoreLedger ledger(spool, metrics);
    const StoreLedger::Snapshot books = ledger.snapshot();
    CHECK(books.pending == 7);
    CHECK(books.accepted == 7);
    CHECK(metrics.value("birdwatch_store_accepted_total") == 7);
}

TEST_CASE("journal: while the disk refuses the spool nothing is published, and at shutdown the rest is dropped, "
          "counted, and shutdown ends",
          "[persistence][hardening][threads]") {
    test::TempDir dir;
    MetricsRegistry metrics;
    Spool spool({dir.file("spool"), SpoolOptions::Fsync::never, 0ms, 1});  // every append opens a new segment
    StoreLedger ledger(spool, metrics);
    std::string error;
    Spool::Appended where;
    REQUIRE(ledger.append(std::vector<std::string>{accepted_tweet(1).tweet.json}, error, where));
    std::filesystem::remove_all(dir.file("spool"));  // the next segment cannot be created
    BoundedChannel<AcceptedTweet> in(64);
    BoundedChannel<Publication> publications(64);
    BoundedChannel<SpooledBatch> spooled(4);
    Journal journal({}, in, publications, &ledger, &spooled, metrics);
    journal.start();
    for (long long id = 2; id <= 11; ++id) REQUIRE(in.push(accepted_tweet(id)));
    // The journal has failed to spool more than once: it is retrying.
    REQUIRE(test::wait_until([&] { return metrics.value("birdwatch_store_spool_failures_total") >= 2; }, 10s));
    CHECK(publications.size() == 0);  // not durable, so not visible
    const auto stop_at = std::chrono::steady_clock::now();
    journal.stop();
    in.close();
    journal.join();
    CHECK(std::chrono::steady_clock::now() - stop_at < 5s);
    CHECK(publications.size() == 0);
    CHECK(metrics.value("birdwatch_store_unspooled_total") == 10);
    CHECK(ledger.snapshot().accepted == 1);
}

TEST_CASE("journal without a store passes publications straight through, in order", "[persistence][threads]") {
    MetricsRegistry metrics;
    BoundedChannel<AcceptedTweet> in(16);
    BoundedChannel<Publication> publications(16);
    Journal journal({}, in, publications, nullptr, nullptr, metrics);
    journal.start();
    std::vector<std::string> out;
    std::thread consumer([&] {
        while (auto p = publications.pop()) out.push_back(p->payload);
    });
    for (long long id = 1; id <= 100; ++id) REQUIRE(in.push(accepted_tweet(id)));
    in.close();
    journal.join();
    consumer.join();
    REQUIRE(out.size() == 100);
    for (std::size_t i = 0; i < out.size(); ++i) CHECK(out[i] == std::to_string(i + 1));
}

TEST_CASE("journal: the source position is saved before the tweets that reach it are published", "[persistence][threads]") {
    test::TempDir dir;
    MetricsRegistry metrics;
    Spool spool({dir.file("spool"), SpoolOptions::Fsync::never, 0ms});
    StoreLedger ledger(spool, metrics);
    BoundedChannel<AcceptedTweet> in(64);
    BoundedChannel<Publication> publications(100000);
    BoundedChannel<SpooledBatch> spooled(100000);
    Journal journal({40, 4096}, in, publications, &ledger, &spooled, metrics);
    journal.start();
    const auto saved = [&] {
        std::ifstream file(dir.file("spool/source-position"));
        long long position = 0;
        file >> position;
        return position;
    };
    // Positions rise with the ids, except a tweet from another instance's slower clock.
    std::size_t behind = 0;
    std::thread publisher([&] {
        while (auto p = publications.pop()) {
            const long long id = std::stoll(p->payload);
            if (saved() < 1000 + (id == 1500 ? 1499 : id)) ++behind;
        }
    });
    for (long long id = 1; id <= 2000; ++id) {
        AcceptedTweet tweet = accepted_tweet(id);
        tweet.position = id == 1500 ? 900 : 1000 + id;
        REQUIRE(in.push(std::move(tweet)));
    }
    in.close();
    journal.join();
    publisher.join();
    CHECK(behind == 0);
    CHECK(saved() == 3000);
    CHECK(Spool({dir.file("spool"), SpoolOptions::Fsync::never, 0ms}).source_position() == 3000);
}
