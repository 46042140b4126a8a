// Sustained stored tweets/s into the embedded SQLite store (rows + FTS5 index), next
// to two baselines measured in the same run: the same rows without the FTS index,
// and the spool's append alone. Each measurement is bounded in time.
//
//   birdwatch-bench-store [--seconds 3] [--batch 1000] [--dir /tmp]

#include "bench/workload.h"
#include "common/store/elastic_store.h"
#include "common/store/sqlite_store.h"
#include "ingest/spool.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>

using namespace birdwatch;
using Clock = std::chrono::steady_clock;

namespace {

// Calls write(batch) over consecutive batches for about `seconds`; returns tweets/s.
double measure(const std::vector<StoredTweet>& rows, std::size_t batch, double seconds,
               const std::function<void(std::span<const StoredTweet>)>& write) {
    const auto start = Clock::now();
    const auto deadline = start + std::chrono::duration<double>(seconds);
    std::size_t done = 0;
    while (Clock::now() < deadline && done + batch <= rows.size()) {
        write(std::span(rows).subspan(done, batch));
        done += batch;
    }
    return static_cast<double>(done) / std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
    double seconds = 3;
    std::size_t batch = 1000;
    std::string base = std::filesystem::temp_directory_path();
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--seconds")) seconds = std::stod(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--batch")) batch = std::stoul(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--dir")) base = argv[i + 1];
    }
    const std::size_t count = static_cast<std::size_t>(std::max(20000.0, 150000.0 * seconds));
    std::vector<StoredTweet> rows;
    for (Tweet& t : workload::synthetic_tweets(count, 8)) {
        std::string json;
        append_tweet_json(json, t);
        rows.push_back({std::move(t), std::move(json)});
    }
    const std::string dir = base + "/birdwatch-store-bench-" + std::to_string(::getpid());
    std::filesystem::create_directories(dir);
    fmt::print("# store benchmark: synthetic tweets (avg {} B of JSON), batches of {}, {:.1f} s each, one thread\n",
               rows[0].json.size(), batch, seconds);

    double store_rate = 0, rows_rate = 0, spool_rate = 0, bulk_rate = 0;
    std::size_t bulk_bytes = 0;
    bulk_rate = measure(rows, batch, seconds, [&](auto b) {
        std::string body;  // what ElasticStore::write sends: action line + document per tweet
        for (const StoredTweet& s : b) {
            body += nlohmann::json{{"index", {{"_index", "birdwatch-tweets"}, {"_id", s.tweet.id}}}}.dump();
            body += '\n';
            body += elastic_document(s).dump();
            body += '\n';
        }
        bulk_bytes += body.size();
    });
    {
        SqliteStore store({dir + "/store.db"});
        store_rate = measure(rows, batch, seconds, [&](auto b) {
            if (!store.write(b).ok()) std::abort();
        });
    }
    {
        sqlite3* db = nullptr;
        sqlite3_open((dir + "/rows.db").c_str(), &db);
        sqlite3_exec(db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                     "CREATE TABLE tweets(id INTEGER PRIMARY KEY, created_at_ms INTEGER NOT NULL, json TEXT NOT NULL);"
                     "CREATE INDEX tweets_by_time ON tweets(created_at_ms);",
                     nullptr, nullptr, nullptr);
        sqlite3_stmt* insert = nullptr;
        sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO tweets VALUES(?, ?, ?)", -1, &insert, nullptr);
        rows_rate = measure(rows, batch, seconds, [&](auto b) {
            sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
            for (const StoredTweet& s : b) {
                sqlite3_bind_int64(insert, 1, std::stoll(s.tweet.id));
                sqlite3_bind_int64(insert, 2, s.tweet.created_at_ms);
                sqlite3_bind_text(insert, 3, s.json.data(), static_cast<int>(s.json.size()), SQLITE_STATIC);
                sqlite3_step(insert);
                sqlite3_reset(insert);
            }
            sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
        });
        sqlite3_finalize(insert);
        sqlite3_close(db);
    }
    {
        Spool spool({dir + "/spool", SpoolOptions::Fsync::interval, std::chrono::milliseconds(1000)});
        std::vector<std::string> records;
        std::string error;
        spool_rate = measure(rows, batch, seconds, [&](auto b) {
            records.clear();
            for (const auto& s : b) records.push_back(s.json);
            if (!spool.append(records, error)) std::abort();
        });
    }
    std::filesystem::remove_all(dir);
    fmt::print("{:<34} {:>12}\n", "what", "tweets/s");
    fmt::print("{:<34} {:>12.0f}\n", "sqlite store (rows + FTS5)", store_rate);
    fmt::print("{:<34} {:>12.0f}\n", "baseline: sqlite rows, no FTS", rows_rate);
    fmt::print("{:<34} {:>12.0f}\n", "baseline: spool append", spool_rate);
    fmt::print("{:<34} {:>12.0f}\n", "elasticsearch _bulk encoding", bulk_rate);
    fmt::print("{:<34} {:>11.0f}%\n", "store / rows-only", 100.0 * store_rate / rows_rate);
    return 0;
}
