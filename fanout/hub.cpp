#include "fanout/hub.h"

#include "common/clock.h"
#include "common/log.h"
#include "common/protocol.h"
#include "fanout/client_protocol.h"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <utility>
#include <cstdlib>
#include <cstring>

namespace birdwatch {

constexpr std::size_t max_burst = 256;

struct Hub::Reader {
    protocol::PayloadReader payload;
    FirstOccurrence first;
    std::shared_ptr<spdlog::logger> log = make_logger("hub");

    void reject(const std::string& payload, const char* why) {
        if (first.first(why))
            log->warn("msg=\"payload dropped: {} (logged once)\" payload={}", why, logfmt(payload.substr(0, 200)));
    }
};

Hub::Hub(MetricsRegistry& metrics, IoPool& loops, QueryAcquired on_acquired, QueryReleased on_released,
         MarkerNeeded on_marker_needed, std::size_t inbox_payloads, std::chrono::milliseconds marker_timeout)
    : loops_(loops),
      shards_(loops.size()),
      on_acquired_(std::move(on_acquired)),
      on_released_(std::move(on_released)),
      on_marker_needed_(std::move(on_marker_needed)),
      marker_timeout_(marker_timeout),
      reader_(std::make_unique<Reader>()),
      inbox_capacity_(std::max<std::size_t>(1, inbox_payloads)),
      payloads_(metrics.counter("birdwatch_fanout_payloads_total", "Payloads received from Redis")),
      latency_(metrics.histogram("birdwatch_fanout_delivery_latency_seconds",
                                 "From the ingest receiving a tweet to this replica handing it to its loops")),
      unreadable_(metrics.counter("birdwatch_fanout_payloads_unreadable_total",
                                  "Payloads without a readable qids array, or spanning several lines (dropped)")),
      unwanted_(metrics.counter("birdwatch_fanout_payloads_unwanted_total",
                                "Tweet payloads none of whose queries has a subscriber here (meant for other "
                                "replicas: every payload reaches every replica in single mode)")),
      deletions_(metrics.counter("birdwatch_fanout_deletions_total", "Delete notices passed to the clients")),
      live_markers_(metrics.counter("birdwatch_fanout_live_markers_total",
                                    "Live markers received (where the ingest began matching a query)")),
      marker_timeouts_(metrics.counter("birdwatch_fanout_live_marker_timeouts_total",
                                       "Subscriptions started without their live marker (none came in time: no "
                                       "ingest?); their history/live boundary is where the loop stood")),
      inbox_dropped_(metrics.counter("birdwatch_fanout_inbox_dropped_total",
                                     "Payloads dropped from a loop's full inbox (the loop fell behind Redis)")) {
    for (const char* reason : {"resubscribed", "epoch", "sequence"})
        gaps_[reason] = &metrics.counter("birdwatch_fanout_gaps_total",
                                         "Gaps announced to clients (they resume the ids in between from the store)",
                                         std::string("reason=\"") + reason + "\"");
    metrics.gauge_fn("birdwatch_fanout_inbox_payloads", "Payloads waiting in the loops' inboxes", [this] {
        std::size_t waiting = 0;
        for (auto& shard : shards_) {
            std::lock_guard lock(shard.inbox_mutex);
            waiting += shard.inbox_payloads;
        }
        return static_cast<double>(waiting);
    });
    metrics.gauge_fn("birdwatch_fanout_connections", "Open WebSocket connections",
                     [this] { return static_cast<double>(size()); });
    metrics.gauge_fn("birdwatch_fanout_queries", "Distinct queries with a subscriber on this replica", [this] {
        std::lock_guard lock(queries_mutex_);
        return static_cast<double>(queries_.size());
    });
}

Hub::~Hub() = default;

void Hub::join(std::size_t loop, const std::shared_ptr<Recipient>& recipient) {
    shards_[loop].members.emplace(recipient.get(), Member{recipient, {}});
    connections_.fetch_add(1, std::memory_order_relaxed);
}

void Hub::leave(std::size_t loop, const Recipient* recipient) {
    Shard& shard = shards_[loop];
    const auto it = shard.members.find(recipient);
    if (it == shard.members.end()) return;
    for (const auto& qid : it->second.qids) drop_subscription(shard, &it->second, qid);
    shard.members.erase(it);
    connections_.fetch_sub(1, std::memory_order_relaxed);
}

std::optional<std::uint64_t> Hub::subscribe(std::size_t loop, const Recipient* recipient, const std::string& qid,
                                            const std::string& canonical) {
    Shard& shard = shards_[loop];
    const auto member = shard.members.find(recipient);
    if (member == shard.members.end()) return std::nullopt;
    auto& qids = member->second.qids;
    if (std::find(qids.begin(), qids.end(), qid) != qids.end()) return std::nullopt;
    qids.push_back(qid);
    // Neither map keeps an empty list: a query is held on this loop while either has it.
    if (!shard.by_query.count(qid) && !shard.pending.count(qid)) count_query(qid, &canonical, +1);
    std::optional<std::uint64_t> confirmed;
    {
        std::lock_guard lock(queries_mutex_);
        if (const auto it = confirmed_.find(qid); it != confirmed_.end() && it->second.marker <= shard.markers_seen)
            confirmed = it->second.after_id;
    }
    if (!confirmed && marker_timeout_.count() == 0) {  // configured not to wait: live from here
        shard.by_query[qid].push_back(&member->second);
        return shard.last_id ? shard.last_id : unknown_boundary;
    }
    if (confirmed) {
        // Everything this loop hands on from here carries the query (the marker came before
        // it); tweets up to the marker's after_id were handled before the query went live.
        shard.by_query[qid].push_back(&member->second);
        return std::max(*confirmed, shard.last_id);
    }
    auto& waiting = shard.pending[qid];
    if (waiting.empty() && on_marker_needed_) on_marker_needed_(qid);
    waiting.push_back({&member->second, std::chrono::steady_clock::now()});
    ++member->second.pending;
    return std::nullopt;
}

void Hub::start_pending(Shard& shard, const std::string& qid, std::uint64_t after_id, bool overdue) {
    const auto it = shard.pending.find(qid);
    if (it == shard.pending.end()) return;
    const auto now = std::chrono::steady_clock::now();
    auto& live = shard.by_query[qid];
    std::vector<Pending> still;
    for (const Pending& p : it->second) {
        if (overdue && now - p.since < marker_timeout_) {
            still.push_back(p);
            continue;
        }
        if (overdue) marker_timeouts_.inc();
        --p.member->pending;
        live.push_back(p.member);
        p.member->recipient->live(qid, after_id);
    }
    if (still.empty()) shard.pending.erase(it);
    else it->second = std::move(still);
    if (live.empty()) shard.by_query.erase(qid);
}

void Hub::start_overdue(std::size_t loop) {
    Shard& shard = shards_[loop];
    std::vector<std::string> qids;
    for (const auto& [qid, waiting] : shard.pending) qids.push_back(qid);
    for (const auto& qid : qids) start_pending(shard, qid, shard.last_id ? shard.last_id : unknown_boundary, true);
}

void Hub::unsubscribe(std::size_t loop, const Recipient* recipient, const std::string& qid) {
    Shard& shard = shards_[loop];
    const auto member = shard.members.find(recipient);
    if (member == shard.members.end()) return;
    auto& qids = member->second.qids;
    const auto at = std::find(qids.begin(), qids.end(), qid);
    if (at == qids.end()) return;
    qids.erase(at);
    drop_subscription(shard, &member->second, qid);
}

void Hub::drop_subscription(Shard& shard, Member* member, const std::string& qid) {
    bool held = false;
    if (const auto it = shard.by_query.find(qid); it != shard.by_query.end()) {
        std::erase(it->second, member);
        if (it->second.empty()) shard.by_query.erase(it);
        held = true;
    }
    if (const auto it = shard.pending.find(qid); it != shard.pending.end()) {
        if (std::erase_if(it->second, [&](const Pending& p) { return p.member == member; }))
            --member->pending;
        if (it->second.empty()) shard.pending.erase(it);
        held = true;
    }
    if (held && !shard.by_query.count(qid) && !shard.pending.count(qid)) count_query(qid, nullptr, -1);
}

// The registrar hears of a query's first and last loop under the lock, so an
// acquire and a release of the same query from two loops reach it in order.
void Hub::count_query(const std::string& qid, const std::string* canonical, int delta) {
    std::lock_guard lock(queries_mutex_);
    if (delta > 0) {
        if (++queries_[qid] == 1) on_acquired_(qid, *canonical);
        return;
    }
    const auto it = queries_.find(qid);
    if (it == queries_.end() || --it->second > 0) return;
    queries_.erase(it);
    confirmed_.erase(qid);  // its lease may lapse: the next subscriber asks again
    on_released_(qid);
}

void Hub::publish(std::string payload) {
    payloads_.inc();
    // A client frame may carry several messages separated by '\n' (docs/protocol.md).
    if (std::memchr(payload.data(), '\n', payload.size())) {
        unreadable_.inc();
        reader_->reject(payload, "payload spans several lines");
        return;
    }
    if (protocol::LiveMarker marker = protocol::read_live_marker(payload); !marker.qid.empty()) {
        live_markers_.inc();
        note_position(payload);
        ++markers_;
        {
            std::lock_guard lock(queries_mutex_);
            if (queries_.count(marker.qid)) confirmed_[marker.qid] = {marker.after_id, markers_};
        }
        burst_.push_back({nullptr, {std::move(marker.qid)}, Routed::Kind::live, marker.after_id, markers_});
        if (burst_.size() >= max_burst) end_of_burst();
        return;
    }
    const bool deletion = !protocol::deleted_id(payload).empty();
    auto qids = deletion ? std::vector<std::string>{} : reader_->payload.qids(payload);
    if (!deletion && qids.empty()) {
        unreadable_.inc();
        reader_->reject(payload, "no readable qids array");
        return;
    }
    note_position(payload);
    if (!deletion) {
        std::lock_guard lock(queries_mutex_);
        if (std::none_of(qids.begin(), qids.end(), [&](const std::string& qid) { return queries_.count(qid) > 0; }))
            unwanted_.inc();
    }
    if (deletion) {  // any client may hold the tweet (live or from history): every subscriber hears of it
        deletions_.inc();
        burst_.push_back({std::make_shared<const std::string>(std::move(payload)), {}, Routed::Kind::notice});
        if (burst_.size() >= max_burst) end_of_burst();
        return;
    }
    const std::uint64_t id = protocol::tweet_id(payload);
    if (gap_reason_ && id > gap_after_) {
        // Announced before this tweet: the gap is the ids between the last one before it and this one.
        if (gap_after_ > 0) {
            gaps_[gap_reason_]->inc();
            reader_->log->info("msg=\"gap: clients resume the ids in between\" reason={} after_id={} before_id={}",
                               gap_reason_, gap_after_, id);
            burst_.push_back(
                {std::make_shared<const std::string>(client::gap_notice(gap_after_, id)), {}, Routed::Kind::gap});
        }
        gap_reason_ = nullptr;
    }
    if (id > latest_tweet_id_.load(std::memory_order_relaxed)) latest_tweet_id_.store(id, std::memory_order_relaxed);
    if (const auto at = payload.find(R"("ingest_us":)"); at != std::string::npos)
        latency_.observe(static_cast<double>(now_epoch_us() - std::strtoll(payload.c_str() + at + 12, nullptr, 10)) / 1e6);
    burst_.push_back({std::make_shared<const std::string>(std::move(payload)), std::move(qids), Routed::Kind::tweet, id});
    // A flood never ends its burst: keep latency and the burst's memory bounded.
    if (burst_.size() >= max_burst) end_of_burst();
}

void Hub::resubscribed() { note_gap("resubscribed"); }

// Every ingest payload is numbered on its channel: a new epoch or a skipped seq is a gap.
void Hub::note_position(const std::string& payload) {
    const protocol::StreamPosition position = protocol::read_position(payload);
    if (position.epoch == 0) return;
    if (last_position_.epoch != 0 && position.epoch != last_position_.epoch) note_gap("epoch");
    else if (last_position_.epoch != 0 && position.seq != last_position_.seq + 1) note_gap("sequence");
    last_position_ = position;
}

void Hub::note_gap(const char* reason) {
    if (gap_reason_) return;  // one gap open at a time: it spans from the first cause on
    gap_reason_ = reason;
    gap_after_ = latest_tweet_id_.load(std::memory_order_relaxed);
    reader_->log->info("msg=\"gap noticed\" reason={} after_id={}", reason, gap_after_);
}

void Hub::end_of_burst() {
    if (burst_.empty()) return;
    const auto burst = std::make_shared<const Burst>(std::move(burst_));
    burst_.clear();
    for (std::size_t loop = 0; loop < shards_.size(); ++loop) {
        Shard& shard = shards_[loop];
        bool wake = false;
        {
            std::lock_guard lock(shard.inbox_mutex);
            shard.inbox.push_back(burst);
            shard.inbox_payloads += burst->size();
            while (shard.inbox_payloads > inbox_capacity_ && shard.inbox.size() > 1) {
                shard.inbox_payloads -= shard.inbox.front()->size();
                inbox_dropped_.inc(shard.inbox.front()->size());
                shard.inbox.pop_front();
            }
            wake = !std::exchange(shard.scheduled, true);
        }
        if (wake) boost::asio::post(loops_.context(loop), [this, loop] { deliver_inbox(loop); });
    }
}

void Hub::deliver_inbox(std::size_t loop) {
    Shard& shard = shards_[loop];
    std::deque<std::shared_ptr<const Burst>> bursts;
    {
        std::lock_guard lock(shard.inbox_mutex);
        bursts.swap(shard.inbox);
        shard.inbox_payloads = 0;
        shard.scheduled = false;
    }
    for (const auto& burst : bursts) queue(shard, *burst);
    deliver_segment(shard);
    for (const auto& recipient : shard.touched) recipient->flush();
    shard.touched.clear();
}

// Recipients only queue here; a recipient that fails leaves on a later turn of its
// loop, so the lists are not changed while they are walked.
void Hub::queue(Shard& shard, const Burst& burst) {
    for (const Routed& routed : burst) {
        const auto& [frame, qids, kind, id, marker] = routed;
        if (kind != Routed::Kind::tweet) deliver_segment(shard);  // it keeps its place among the tweets
        if (kind == Routed::Kind::live) {
            shard.markers_seen = marker;
            start_pending(shard, qids[0], id, false);
            continue;
        }
        if (kind == Routed::Kind::notice || kind == Routed::Kind::gap) {
            const Frame local(std::make_shared<Frame>(frame), frame.get());
            for (auto& [key, member] : shard.members) {
                const std::size_t wanted = kind == Routed::Kind::gap ? member.pending : 0;
                if (member.qids.size() > wanted && member.recipient->notice(local)) shard.touched.push_back(member.recipient);
            }
            continue;
        }
        shard.last_id = std::max(shard.last_id, id);
        bool wanted = false;
        for (const auto& qid : qids) {
            const auto it = shard.by_query.find(qid);
            if (it == shard.by_query.end()) continue;
            const auto [at, added] = shard.segment_index.try_emplace(&it->second, shard.segment.size());
            if (added) shard.segment.push_back({&it->first, &it->second, {}, {}});
            QueryBatches& batches = shard.segment[at->second];
            batches.building.add(*frame, id);
            if (batches.building.full()) batches.built.push_back(batches.building.finish());
            wanted = true;
        }
        if (wanted) shard.segment_tweets.push_back(&routed);
    }
}

// Each query's batches to its subscribers. A subscriber of several live queries gets its
// one query's batches when only one of them had tweets, else a batch of its own: the
// segment's tweets any of them matched, each once, in order.
void Hub::deliver_segment(Shard& shard) {
    if (shard.segment.empty()) return;
    ++shard.segments;
    for (QueryBatches& batches : shard.segment) {
        if (batches.building.messages()) batches.built.push_back(batches.building.finish());
        for (Member* member : *batches.members) {
            if (member->several_live()) {
                if (member->merged_in != shard.segments) {
                    member->merged_in = shard.segments;
                    shard.merged.push_back(member);
                }
                continue;
            }
            bool wants_flush = false;
            for (const BatchPtr& batch : batches.built) wants_flush = member->recipient->deliver(batch) || wants_flush;
            if (wants_flush) shard.touched.push_back(member->recipient);
        }
    }
    for (Member* member : shard.merged) deliver_merged(shard, *member);
    shard.segment.clear();
    shard.segment_index.clear();
    shard.segment_tweets.clear();
    shard.merged.clear();
}

void Hub::deliver_merged(Shard& shard, Member& member) {
    // This segment's batches of the member's live queries (a waiting one is in `pending`).
    auto& mine = shard.member_batches;
    mine.clear();
    for (const auto& qid : member.qids) {
        const auto list = shard.by_query.find(qid);
        if (list == shard.by_query.end()) continue;
        if (const auto waiting = shard.pending.find(qid);
            waiting != shard.pending.end() &&
            std::any_of(waiting->second.begin(), waiting->second.end(), [&](const Pending& p) { return p.member == &member; }))
            continue;
        if (const auto at = shard.segment_index.find(&list->second); at != shard.segment_index.end())
            mine.push_back(&shard.segment[at->second]);
    }
    bool wants_flush = false;
    if (mine.size() == 1) {  // only one of its queries had tweets: that query's shared batches
        for (const BatchPtr& batch : mine.front()->built) wants_flush = member.recipient->deliver(batch) || wants_flush;
    } else if (mine.size() > 1) {  // a batch of its own: each tweet once, in order
        auto matched = [&](const std::string& qid) {
            return std::any_of(mine.begin(), mine.end(), [&](const QueryBatches* b) { return *b->qid == qid; });
        };
        Batch::Builder building;
        auto deliver = [&] { wants_flush = member.recipient->deliver(building.finish()) || wants_flush; };
        for (const Routed* tweet : shard.segment_tweets) {
            if (!std::any_of(tweet->qids.begin(), tweet->qids.end(), matched)) continue;
            building.add(*tweet->frame, tweet->id);
            if (building.full()) deliver();
        }
        if (building.messages()) deliver();
    }
    if (wants_flush) shard.touched.push_back(member.recipient);
}

template <typename Visit>
void Hub::for_each_member(Visit visit) {
    for (std::size_t loop = 0; loop < shards_.size(); ++loop)
        boost::asio::post(loops_.context(loop), [this, loop, visit] {
            // Collected first: a visit may make the recipient leave (and erase itself).
            std::vector<std::shared_ptr<Recipient>> all;
            for (const auto& [key, member] : shards_[loop].members) all.push_back(member.recipient);
            for (const auto& recipient : all) visit(loop, *recipient);
        });
}

void Hub::broadcast_all(const Frame& frame) {
    // A batch per loop, shared by its members: each is compressed (when asked) by its own loop only.
    std::vector<BatchPtr> batches;
    for (std::size_t loop = 0; loop < shards_.size(); ++loop) batches.push_back(single_batch(*frame));
    for_each_member([batches](std::size_t loop, Recipient& recipient) {
        if (recipient.deliver(batches[loop])) recipient.flush();
    });
}

void Hub::close_all(unsigned short code) {
    for_each_member([code](std::size_t, Recipient& recipient) { recipient.close(code); });
}

}  // namespace birdwatch
