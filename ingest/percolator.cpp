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
        if (slots_.size() >= exact_bit) return false;  // 2^31 queries: beyond any machine's memory anyway
        slot = static_cast<std::uint32_t>(slots_.size());
        slots_.emplace_back();
    }
    Entry& e = slots_[slot];
    e.id = query.id;
    e.keys = presearch_keys(query.root);
    const Kind kind = query.root.kind;
    e.exact = kind == Kind::word || kind == Kind::hashtag || kind == Kind::mention || kind == Kind::from ||
              kind == Kind::to;
    const std::vector<Instruction> program = compile(query.root);
    if (arena_.size() + program.size() + 1 >= exact_bit) compact();
    e.code = static_cast<std::uint32_t>(arena_.size());
    arena_.push_back({Instruction::Op::header, static_cast<std::uint32_t>(program.size() + 1),
                      static_cast<std::uint64_t>(slot) << 32});
    arena_.insert(arena_.end(), program.begin(), program.end());
    for (std::uint64_t k : e.keys) postings_[k].push_back(e.exact ? slot | exact_bit : e.code);
    by_id_.emplace(query.id, slot);
    return true;
}

bool Percolator::remove(const std::string& id) {
    const auto it = by_id_.find(id);
    if (it == by_id_.end()) return false;
    const std::uint32_t slot = it->second;
    Entry& e = slots_[slot];
    const std::uint32_t entry = e.exact ? slot | exact_bit : e.code;
    for (std::uint64_t k : e.keys) {
        auto posting = postings_.find(k);
        auto& list = posting->second;
        *std::find(list.begin(), list.end(), entry) = list.back();
        list.pop_back();
        if (list.empty()) postings_.erase(posting);
    }
    dead_cells_ += arena_[e.code].size;
    e = Entry{};
    free_slots_.push_back(slot);
    by_id_.erase(it);
    if (dead_cells_ > 1024 && dead_cells_ > arena_.size() / 2) compact();
    return true;
}

// Rewrites the arena without the programs of removed queries, and the postings to match.
void Percolator::compact() {
    std::vector<Instruction> fresh;
    fresh.reserve(arena_.size() - dead_cells_);
    std::unordered_map<std::uint32_t, std::uint32_t> moved;
    for (Entry& e : slots_) {
        if (e.id.empty()) continue;
        const std::uint32_t old = e.code;
        const std::uint32_t size = arena_[old].size;
        e.code = static_cast<std::uint32_t>(fresh.size());
        moved.emplace(old, e.code);
        fresh.insert(fresh.end(), arena_.begin() + old, arena_.begin() + old + size);
    }
    for (auto& [key, list] : postings_)
        for (std::uint32_t& entry : list)
            if (!(entry & exact_bit)) entry = moved.at(entry);
    arena_ = std::move(fresh);
    dead_cells_ = 0;
    ++compactions_;
}

void Percolator::match(const TweetFeatures& tweet, std::vector<const std::string*>& out) {
    if (++round_ == 0) {  // wrapped: forget every stamp once every 4 billion tweets
        for (std::size_t i = 0; i < arena_.size(); i += arena_[i].size) arena_[i].term &= ~0xFFFFFFFFULL;
        round_ = 1;
    }
    tweet_keys_.clear();
    for (TermHash h : tweet.token_set) tweet_keys_.push_back(key('w', h));
    for (TermHash h : tweet.hashtags) tweet_keys_.push_back(key('h', h));
    for (TermHash h : tweet.mentions) tweet_keys_.push_back(key('m', h));
    tweet_keys_.push_back(key('f', tweet.from));
    if (tweet.to) tweet_keys_.push_back(key('t', tweet.to));
    constexpr std::size_t prefetch_distance = 8;
    Instruction* arena = arena_.data();
    for (std::uint64_t k : tweet_keys_) {
        const auto posting = postings_.find(k);
        if (posting == postings_.end()) continue;
        const std::vector<std::uint32_t>& list = posting->second;
        const std::size_t n = list.size();
        candidates_evaluated_ += n;
        for (std::size_t i = 0; i < n; ++i) {
            if (i + prefetch_distance < n && !(list[i + prefetch_distance] & exact_bit))
                __builtin_prefetch(arena + list[i + prefetch_distance]);
            const std::uint32_t entry = list[i];
            if (entry & exact_bit) {
                out.push_back(&slots_[entry & ~exact_bit].id);
                continue;
            }
            Instruction& header = arena[entry];
            if (static_cast<std::uint32_t>(header.term) == round_) continue;
            header.term = (header.term & ~0xFFFFFFFFULL) | round_;
            if (run(&header + 1, tweet)) out.push_back(&slots_[header.term >> 32].id);
        }
    }
}

void Percolator::match_brute_force(const TweetFeatures& tweet, std::vector<const std::string*>& out) const {
    for (const Entry& e : slots_)
        if (!e.id.empty() && run(&arena_[e.code] + 1, tweet)) out.push_back(&e.id);
}

}  // namespace birdwatch
