#pragma once
// Serves history, resume and single-tweet reads for WebSocket sessions from the
// store, on its own worker threads (each with its own store connection), so a slow
// store never blocks an Asio thread. Requests arrive validated (client_protocol.h)
// and queue on a bounded belt; a full belt is answered at once with a `busy` error
// instead of growing memory. Every read is a bounded page (size and scan budget).

#include "common/channel.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/store/tweet_store.h"
#include "common/thread_guard.h"

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace birdwatch {

struct StoreReaderOptions {
    std::function<std::unique_ptr<TweetStore>()> open_store;  // called once per worker thread
    int threads = 2;
    std::size_t queue_capacity = 1000;
    std::size_t max_page = 100;
    std::size_t max_candidates = 10000;  // rows a page may look at before it is cut short
    // How long a resume waits (without holding a thread) for the store to hold what
    // the replica has already seen live.
    std::chrono::milliseconds catch_up_wait{2000};
};

class StoreReader {
public:
    using Reply = std::function<void(std::string frame)>;  // called on a worker thread

    StoreReader(StoreReaderOptions options, MetricsRegistry& metrics);
    ~StoreReader();
    void start();
    void stop();

    // Newest first, ids below `before` (0: from the newest); reply type "history". Like
    // resume, waits (up to catch_up_wait) until the store holds tweet `wait_for` (0: no wait).
    bool history(const std::string& qid, const std::string& canonical, std::size_t size, std::uint64_t before,
                 std::uint64_t wait_for, Reply reply);
    // Matches with ids above `since_id` and below `before_id` (the tweet after the newest
    // the replica had seen when the client subscribed, as what came later reaches it
    // live; or a gap's end), oldest first, a page of max_page; reply type "resumed" with
    // `next_since` while more may follow. The bound keeps the walk from chasing the live
    // stream. The store lags the live stream by a batch, so a page waits (up to
    // catch_up_wait) until the store holds tweet `wait_for`: the ingest stores in order,
    // so then nothing the client missed can be missing from the store either. The
    // request is set aside meanwhile and checked again every few milliseconds: no thread
    // waits for it. 0: no bound, no wait.
    bool resume(const std::string& qid, const std::string& canonical, std::uint64_t since_id, std::uint64_t before_id,
                std::uint64_t wait_for, Reply reply);
    // Reply {"type":"found"} or {"type":"not_found"}.
    bool get(std::uint64_t id, Reply reply);
    std::size_t max_page() const { return options_.max_page; }

private:
    using Clock = std::chrono::steady_clock;
    struct Request {
        enum class Kind { history, resume, get } kind;
        std::string qid, canonical;
        PageRequest page;
        std::uint64_t id = 0;            // get
        std::uint64_t caught_up_to = 0;  // history, resume: the tweet the store must hold first
        std::uint64_t before_id = 0;     // resume: echoed, so the client pages with it
        Clock::time_point wait_until{};  // history, resume: how long it may wait for the store to catch up
        Reply reply;
    };
    bool submit(Request request);
    void work();
    void handle(std::unique_ptr<TweetStore>& store, Request& request);
    // A resume that must wait for the store is set aside; false when it need not (or cannot) wait.
    bool set_aside(TweetStore& store, Request& request);
    std::deque<Request> take_due();
    std::string serve(TweetStore& store, const Request& request);

    StoreReaderOptions options_;
    BoundedChannel<Request> requests_;
    std::mutex waiting_mutex_;
    std::deque<Request> waiting_;  // resumes waiting for the store to catch up; within queue_capacity
    std::shared_ptr<spdlog::logger> log_;
    ThreadGuard guard_;
    Counter& served_;
    Counter& failed_;
    Counter& resumed_tweets_;
    Counter& busy_;
    Counter& unreadable_rows_;
    Counter& cut_short_;
    std::vector<std::thread> workers_;
};

}  // namespace birdwatch
