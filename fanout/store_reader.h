#pragma once
// Serves history and single-tweet reads for WebSocket sessions from the store, on
// its own worker threads (each with its own store connection), so a slow store
// never blocks an Asio thread. Requests queue on a bounded belt; a full belt is
// answered at once with a `busy` error instead of growing memory.

#include "common/channel.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/store/tweet_store.h"

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace birdwatch {

struct StoreReaderOptions {
    std::function<std::unique_ptr<TweetStore>()> open_store;  // called once per worker thread
    int threads = 2;
    std::size_t queue_capacity = 1000;
    std::size_t max_page = 100;
};

class StoreReader {
public:
    using Reply = std::function<void(std::string frame)>;  // called on a worker thread

    StoreReader(StoreReaderOptions options, MetricsRegistry& metrics);
    ~StoreReader();
    void start();
    void stop();

    // Newest first, ids below `before` (all when empty); reply type "history".
    bool history(const std::string& qid, const std::string& canonical, std::size_t size, const std::string& before,
                 Reply reply);
    // Matches with ids above `since_id`, oldest first; reply type "resumed". The store lags
    // the live stream by a batch, so it first waits (up to 2 s) until the store holds
    // `caught_up_to`, the newest tweet the replica had seen: then nothing the client
    // missed live can be missing from the store either.
    bool resume(const std::string& qid, const std::string& canonical, const std::string& since_id,
                std::uint64_t caught_up_to, Reply reply);
    // Reply type "tweet" wrapped as {"type":"found"} or "not_found".
    bool get(const std::string& id, Reply reply);
    std::size_t max_page() const { return options_.max_page; }

private:
    struct Request {
        enum class Kind { history, resume, get } kind;
        std::string qid, canonical, position, id;
        std::size_t size = 0;
        std::uint64_t caught_up_to = 0;
        Reply reply;
    };
    bool submit(Request request);
    void work();
    std::string serve(TweetStore& store, const Request& request);

    StoreReaderOptions options_;
    BoundedChannel<Request> requests_;
    std::shared_ptr<spdlog::logger> log_;
    Counter& served_;
    Counter& failed_;
    Counter& busy_;
    std::vector<std::thread> workers_;
};

}  // namespace birdwatch
