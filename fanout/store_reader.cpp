#include "fanout/store_reader.h"

#include "common/json_text.h"
#include "common/query/query.h"

#include <algorithm>

namespace birdwatch {

namespace {

std::string error_frame(std::string_view code, std::string_view message) {
    std::string out = R"({"v":1,"type":"error","code":)";
    json_text::append_string(out, code);
    out += R"(,"message":)";
    json_text::append_string(out, message);
    return out + "}";
}

// {"v":1,"type":<type>,"qid":..,"tweets":[..],"next_before":..}
std::string page_frame(const char* type, const std::string& qid, const std::vector<std::string>& tweets,
                       const std::string& next_before) {
    std::string out = R"({"v":1,"type":")";
    out += type;
    out += R"(","qid":)";
    json_text::append_string(out, qid);
    out += R"(,"tweets":[)";
    for (std::size_t i = 0; i < tweets.size(); ++i) {
        if (i) out += ',';
        out += tweets[i];
    }
    out += R"(],"next_before":)";
    if (next_before.empty())
        out += "null";
    else
        json_text::append_string(out, next_before);
    return out + "}";
}

std::uint64_t id_value(const std::string& tweet_json) {
    const auto at = tweet_json.find(R"("id":")");
    return at == std::string::npos ? 0 : std::stoull(tweet_json.substr(at + 6));
}

}  // namespace

StoreReader::StoreReader(StoreReaderOptions options, MetricsRegistry& metrics)
    : options_(std::move(options)),
      requests_(options_.queue_capacity),
      log_(make_logger("store-reader")),
      served_(metrics.counter("birdwatch_fanout_store_reads_total", "History, resume and get requests served")),
      failed_(metrics.counter("birdwatch_fanout_store_read_failures_total", "Store reads that failed")),
      busy_(metrics.counter("birdwatch_fanout_store_reads_refused_total", "Store reads refused: queue full")) {
    metrics.gauge_fn("birdwatch_fanout_store_queue_depth", "Store reads waiting",
                     [this] { return static_cast<double>(requests_.size()); });
}

StoreReader::~StoreReader() { stop(); }

void StoreReader::start() {
    for (int i = 0; i < std::max(1, options_.threads); ++i) workers_.emplace_back([this] { work(); });
}

void StoreReader::stop() {
    requests_.close();
    for (auto& w : workers_) w.join();
    workers_.clear();
}

bool StoreReader::submit(Request request) {
    if (requests_.try_push(std::move(request))) return true;
    busy_.inc();
    return false;
}

bool StoreReader::history(const std::string& qid, const std::string& canonical, std::size_t size,
                          const std::string& before, Reply reply) {
    return submit({Request::Kind::history, qid, canonical, before, {}, std::min(size, options_.max_page), 0, std::move(reply)});
}

bool StoreReader::resume(const std::string& qid, const std::string& canonical, const std::string& since_id,
                         std::uint64_t caught_up_to, Reply reply) {
    return submit({Request::Kind::resume, qid, canonical, since_id, {}, options_.max_page, caught_up_to, std::move(reply)});
}

bool StoreReader::get(const std::string& id, Reply reply) {
    return submit({Request::Kind::get, {}, {}, {}, id, 0, 0, std::move(reply)});
}

void StoreReader::work() {
    std::unique_ptr<TweetStore> store;
    while (auto request = requests_.pop()) {
        if (!store) {
            try {
                store = options_.open_store();
            } catch (const std::exception& e) {
                failed_.inc();
                log_->warn("msg=\"cannot open the store\" error=\"{}\"", e.what());
                request->reply(error_frame("store_unavailable", "the store cannot be opened right now"));
                continue;
            }
        }
        request->reply(serve(*store, *request));
    }
}

std::string StoreReader::serve(TweetStore& store, const Request& r) {
    StoreStatus status;
    if (r.kind == Request::Kind::get) {
        const auto tweet = store.get(r.id, status);
        if (!status.ok()) {
            failed_.inc();
            return error_frame("store_unavailable", status.message);
        }
        served_.inc();
        std::string out = R"({"v":1,"type":)";
        out += tweet ? R"("found","tweet":)" + *tweet : std::string(R"("not_found","id":)");
        if (!tweet) json_text::append_string(out, r.id);
        return out + "}";
    }
    const QueryParse parse = parse_query(r.canonical);
    if (!parse.query) return error_frame("bad_query", parse.error.message);
    if (r.kind == Request::Kind::history) {
        const HistoryPage page = store.history(*parse.query, r.size, r.position, status);
        if (!status.ok()) {
            failed_.inc();
            return error_frame("store_unavailable", status.message);
        }
        served_.inc();
        return page_frame("history", r.qid, page.tweets, page.next_before);
    }
    // resume: let the store catch up with what this replica has seen live, then walk
    // history newest-first down to since_id, and hand it over oldest first.
    if (r.caught_up_to > 0) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        while (!store.get(std::to_string(r.caught_up_to), status) && status.ok() &&
               std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const std::uint64_t since = r.position.empty() ? 0 : std::stoull(r.position);
    std::vector<std::string> missed;
    std::string before;
    bool more = true;
    while (more && missed.size() < 10000) {
        const HistoryPage page = store.history(*parse.query, r.size, before, status);
        if (!status.ok()) {
            failed_.inc();
            return error_frame("store_unavailable", status.message);
        }
        for (const auto& t : page.tweets) {
            if (id_value(t) <= since) {
                more = false;
                break;
            }
            missed.push_back(t);
        }
        if (page.next_before.empty()) more = false;
        before = page.next_before;
    }
    std::reverse(missed.begin(), missed.end());
    served_.inc();
    return page_frame("resumed", r.qid, missed, "");
}

}  // namespace birdwatch
