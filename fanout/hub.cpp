#include "fanout/hub.h"

#include "common/clock.h"
#include "common/log.h"

#include <simdjson.h>

#include <algorithm>
#include <cstdlib>

namespace birdwatch {

namespace od = simdjson::ondemand;

// Reads only the "qids" member of a payload; the rest is never parsed.
struct Hub::Reader {
    od::parser parser;
    std::string padded;
    std::vector<std::string> qids;
    FirstOccurrence first;
    std::shared_ptr<spdlog::logger> log = make_logger("hub");

    bool read(const std::string& payload) {
        qids.clear();
        padded.reserve(payload.size() + simdjson::SIMDJSON_PADDING);
        padded.assign(payload);
        od::document doc;
        od::object root;
        if (parser.iterate(padded.data(), padded.size(), padded.capacity()).get(doc) || doc.get_object().get(root))
            return false;
        for (auto field : root) {
            std::string_view key;
            if (field.unescaped_key().get(key)) return false;
            if (key != "qids") continue;
            od::array ids;
            if (field.value().get_array().get(ids)) return false;
            for (auto id : ids) {
                std::string_view text;
                if (id.get_string().get(text)) return false;
                qids.emplace_back(text);
            }
            return true;
        }
        return false;
    }
};

Hub::Hub(MetricsRegistry& metrics, QueryAcquired on_acquired, QueryReleased on_released)
    : on_acquired_(std::move(on_acquired)),
      on_released_(std::move(on_released)),
      reader_(std::make_unique<Reader>()),
      payloads_(metrics.counter("birdwatch_fanout_payloads_total", "Payloads received from Redis")),
      latency_(metrics.histogram("birdwatch_fanout_delivery_latency_seconds",
                                 "From the ingest receiving a tweet to this replica handing it to its clients' queues")),
      unreadable_(metrics.counter("birdwatch_fanout_payloads_unreadable_total",
                                  "Payloads without a readable qids array (dropped)")),
      unrouted_(metrics.counter("birdwatch_fanout_payloads_unrouted_total",
                                "Payloads none of whose queries has a subscriber here")) {
    metrics.gauge_fn("birdwatch_fanout_connections", "Open WebSocket connections",
                     [this] { return static_cast<double>(size()); });
    metrics.gauge_fn("birdwatch_fanout_queries", "Distinct queries with a subscriber on this replica", [this] {
        std::lock_guard lock(mutex_);
        return static_cast<double>(by_query_.size());
    });
}

Hub::~Hub() = default;

void Hub::join(const std::shared_ptr<Recipient>& recipient) {
    std::lock_guard lock(mutex_);
    members_.emplace(recipient.get(), Member{recipient, {}});
}

void Hub::drop_subscription(const Recipient* recipient, const std::string& qid, std::vector<std::string>& released) {
    auto it = by_query_.find(qid);
    if (it == by_query_.end()) return;
    auto& list = it->second;
    list.erase(std::remove(list.begin(), list.end(), recipient), list.end());
    if (list.empty()) {
        by_query_.erase(it);
        released.push_back(qid);
    }
}

void Hub::leave(const Recipient* recipient) {
    std::vector<std::string> released;
    {
        std::lock_guard lock(mutex_);
        auto it = members_.find(recipient);
        if (it == members_.end()) return;
        for (const auto& qid : it->second.qids) drop_subscription(recipient, qid, released);
        members_.erase(it);
    }
    for (const auto& qid : released) on_released_(qid);
}

bool Hub::subscribe(const Recipient* recipient, const std::string& qid, const std::string& canonical) {
    bool first = false;
    {
        std::lock_guard lock(mutex_);
        auto member = members_.find(recipient);
        if (member == members_.end()) return false;
        auto& qids = member->second.qids;
        if (std::find(qids.begin(), qids.end(), qid) != qids.end()) return false;
        qids.push_back(qid);
        auto& list = by_query_[qid];
        first = list.empty();
        list.push_back(recipient);
    }
    if (first) on_acquired_(qid, canonical);
    return true;
}

bool Hub::unsubscribe(const Recipient* recipient, const std::string& qid) {
    std::vector<std::string> released;
    {
        std::lock_guard lock(mutex_);
        auto member = members_.find(recipient);
        if (member == members_.end()) return false;
        auto& qids = member->second.qids;
        const auto at = std::find(qids.begin(), qids.end(), qid);
        if (at == qids.end()) return false;
        qids.erase(at);
        drop_subscription(recipient, qid, released);
    }
    for (const auto& q : released) on_released_(q);
    return true;
}

std::size_t Hub::subscriptions_of(const Recipient* recipient) const {
    std::lock_guard lock(mutex_);
    const auto it = members_.find(recipient);
    return it == members_.end() ? 0 : it->second.qids.size();
}

void Hub::publish(std::string payload) {
    payloads_.inc();
    if (!reader_->read(payload)) {
        unreadable_.inc();
        if (reader_->first.first("unreadable"))
            reader_->log->warn("msg=\"payload without a readable qids array, dropped (logged once)\" payload=\"{}\"",
                               payload.substr(0, 200));
        return;
    }
    if (const auto at = payload.find(R"("tweet":{"id":")"); at != std::string::npos) {
        const std::uint64_t id = std::strtoull(payload.c_str() + at + 15, nullptr, 10);
        if (id > latest_tweet_id_.load(std::memory_order_relaxed)) latest_tweet_id_.store(id, std::memory_order_relaxed);
    }
    targets_.clear();
    {
        std::lock_guard lock(mutex_);
        for (const auto& qid : reader_->qids) {
            const auto it = by_query_.find(qid);
            if (it == by_query_.end()) continue;
            for (const Recipient* r : it->second)
                if (auto strong = members_.at(r).recipient.lock()) targets_.push_back(std::move(strong));
        }
    }
    if (targets_.empty()) {
        unrouted_.inc();
        return;
    }
    if (const auto at = payload.find(R"("ingest_ms":)"); at != std::string::npos)
        latency_.observe(static_cast<double>(now_epoch_ms() - std::strtoll(payload.c_str() + at + 12, nullptr, 10)) / 1000.0);
    // A client whose several queries matched receives the tweet once.
    std::sort(targets_.begin(), targets_.end());
    targets_.erase(std::unique(targets_.begin(), targets_.end()), targets_.end());
    const Frame frame = std::make_shared<const std::string>(std::move(payload));
    for (const auto& target : targets_) target->deliver(frame);
    targets_.clear();
}

std::vector<std::shared_ptr<Recipient>> Hub::all() const {
    std::vector<std::shared_ptr<Recipient>> out;
    std::lock_guard lock(mutex_);
    out.reserve(members_.size());
    for (const auto& [key, member] : members_)
        if (auto strong = member.recipient.lock()) out.push_back(std::move(strong));
    return out;
}

void Hub::broadcast_all(const Frame& frame) {
    for (const auto& recipient : all()) recipient->deliver(frame);
}

void Hub::close_all(unsigned short code) {
    for (const auto& recipient : all()) recipient->close(code);
}

std::size_t Hub::size() const {
    std::lock_guard lock(mutex_);
    return members_.size();
}

}  // namespace birdwatch
