#include "ingest/percolator.h"

#include <algorithm>

namespace birdwatch {

namespace {

using Kind = QueryNode::Kind;

// Keys of different fields never collide: the same word as keyword and as hashtag differ.
std::uint64_t key(char field, TermHash h) { return h ^ (static_cast<std::uint64_t>(field) * 0x9E3779B97F4A7C15ULL); }

struct KeySet {
    std::vector<std::uint64_t> keys;
    std::size_t weight = 0;  // longer terms are rarer: prefer them, as Lucene's TermWeightor does
};

bool anchored_leaf(Kind kind) {
    return kind == Kind::word || kind == Kind::phrase || kind == Kind::hashtag || kind == Kind::mention ||
           kind == Kind::from || kind == Kind::to;
}

// Returns false for a node that does not guarantee any term (negation, lang:, is:, has:).
bool extract(const QueryNode& node, KeySet& out) {
    switch (node.kind) {
        case Kind::word: out = {{key('w', node.hashes[0])}, node.tokens[0].size()}; return true;
        case Kind::phrase: {
            // Any one token of the phrase must occur; index the longest.
            std::size_t best = 0;
            for (std::size_t i = 1; i < node.tokens.size(); ++i)
                if (node.tokens[i].size() > node.tokens[best].size()) best = i;
            out = {{key('w', node.hashes[best])}, node.tokens[best].size()};
            return true;
        }
        case Kind::hashtag: out = {{key('h', node.hashes[0])}, node.tokens[0].size() + 4}; return true;
        case Kind::mention: out = {{key('m', node.hashes[0])}, node.tokens[0].size() + 4}; return true;
        case Kind::from: out = {{key('f', node.hashes[0])}, node.tokens[0].size() + 4}; return true;
        case Kind::to: out = {{key('t', node.hashes[0])}, node.tokens[0].size() + 4}; return true;
        case Kind::all_of: {
            bool found = false;
            for (const auto& child : node.children) {
                KeySet candidate;
                if (!extract(child, candidate)) continue;
                const bool better = !found || candidate.keys.size() < out.keys.size() ||
                                    (candidate.keys.size() == out.keys.size() && candidate.weight > out.weight);
                if (better) out = std::move(candidate);
                found = true;
            }
            return found;
        }
        case Kind::any_of: {
            KeySet all;
            all.weight = SIZE_MAX;
            for (const auto& child : node.children) {
                KeySet part;
                if (!extract(child, part)) return false;
                all.keys.insert(all.keys.end(), part.keys.begin(), part.keys.end());
                all.weight = std::min(all.weight, part.weight);
            }
            std::sort(all.keys.begin(), all.keys.end());
            all.keys.erase(std::unique(all.keys.begin(), all.keys.end()), all.keys.end());
            out = std::move(all);
            return true;
        }
        default:
            return false;
    }
}

}  // namespace

std::vector<std::uint64_t> presearch_keys(const QueryNode& query) {
    KeySet set;
    return extract(query, set) ? set.keys : std::vector<std::uint64_t>{};
}

bool Percolator::add(const ParsedQuery& query) {
    if (by_id_.count(query.id)) return false;
    std::uint32_t slot;
    if (!free_slots_.empty()) {
        slot = free_slots_.back();
        free_slots_.pop_back();
    } else {
        slot = static_cast<std::uint32_t>(slots_.size());
        slots_.emplace_back();
        seen_.push_back(0);
    }
    Slot& s = slots_[slot];
    s.id = query.id;
    s.root = query.root;
    s.keys = presearch_keys(query.root);
    s.live = true;
    for (std::uint64_t k : s.keys) postings_[k].push_back(slot);
    by_id_.emplace(query.id, slot);
    return true;
}

bool Percolator::remove(const std::string& id) {
    const auto it = by_id_.find(id);
    if (it == by_id_.end()) return false;
    const std::uint32_t slot = it->second;
    Slot& s = slots_[slot];
    for (std::uint64_t k : s.keys) {
        auto posting = postings_.find(k);
        auto& list = posting->second;
        const auto at = std::find(list.begin(), list.end(), slot);
        *at = list.back();
        list.pop_back();
        if (list.empty()) postings_.erase(posting);
    }
    s = Slot{};
    free_slots_.push_back(slot);
    by_id_.erase(it);
    return true;
}

void Percolator::match(const TweetFeatures& tweet, std::vector<const std::string*>& out) {
    if (++round_ == 0) {  // wrapped: forget every stamp once every 4 billion tweets
        std::fill(seen_.begin(), seen_.end(), 0);
        round_ = 1;
    }
    tweet_keys_.clear();
    for (TermHash h : tweet.token_set) tweet_keys_.push_back(key('w', h));
    for (TermHash h : tweet.hashtags) tweet_keys_.push_back(key('h', h));
    for (TermHash h : tweet.mentions) tweet_keys_.push_back(key('m', h));
    tweet_keys_.push_back(key('f', tweet.from));
    if (tweet.to) tweet_keys_.push_back(key('t', tweet.to));
    for (std::uint64_t k : tweet_keys_) {
        const auto posting = postings_.find(k);
        if (posting == postings_.end()) continue;
        for (std::uint32_t slot : posting->second) {
            if (seen_[slot] == round_) continue;
            seen_[slot] = round_;
            ++candidates_evaluated_;
            if (matches(slots_[slot].root, tweet)) out.push_back(&slots_[slot].id);
        }
    }
}

void Percolator::match_brute_force(const TweetFeatures& tweet, std::vector<const std::string*>& out) const {
    for (const Slot& s : slots_)
        if (s.live && matches(s.root, tweet)) out.push_back(&s.id);
}

}  // namespace birdwatch
