#include "ingest/percolator.h"

#include <algorithm>
#include <optional>
#include <utility>

namespace birdwatch {

namespace {

using Kind = QueryNode::Kind;

// Keys of different fields never collide: the same word as keyword and as hashtag differ.
std::uint64_t key(char field, TermHash h) { return h ^ (static_cast<std::uint64_t>(field) * 0x9E3779B97F4A7C15ULL); }

struct KeyWeight {
    std::uint64_t key;
    std::size_t weight;  // longer terms are rarer: prefer them, as Lucene's TermWeightor does
};

// The key of a term that one key decides (word, #, @, from:, to:), and its weight.
std::optional<KeyWeight> term_key(const QueryNode& node) {
    char field = 0;
    std::size_t bonus = 4;  // a hashtag, mention or user is rarer than a word of the same length
    switch (node.kind) {
        case Kind::word: field = 'w', bonus = 0; break;
        case Kind::hashtag: field = 'h'; break;
        case Kind::mention: field = 'm'; break;
        case Kind::from: field = 'f'; break;
        case Kind::to: field = 't'; break;
        default: return std::nullopt;
    }
    return KeyWeight{key(field, node.hashes[0]), node.tokens[0].size() + bonus};
}

struct KeySet {
    std::vector<std::uint64_t> keys;
    std::size_t weight = 0;
};

// Returns false for a node that does not guarantee any term (negation, lang:, is:, has:).
bool extract(const QueryNode& node, KeySet& out) {
    if (const auto term = term_key(node)) {
        out = {{term->key}, term->weight};
        return true;
    }
    switch (node.kind) {
        case Kind::phrase: {
            // Any one token of the phrase must occur; index the longest.
            std::size_t best = 0;
            for (std::size_t i = 1; i < node.tokens.size(); ++i)
                if (node.tokens[i].size() > node.tokens[best].size()) best = i;
            out = {{key('w', node.hashes[best])}, node.tokens[best].size()};
            return true;
        }
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

// Keys present in every tweet the node matches, with their weights: the terms of a
// conjunction, every token of a phrase, and lang: (the tweet's language is one of its keys).
void required_keys(const QueryNode& node, std::vector<KeyWeight>& out) {
    if (const auto term = term_key(node)) return out.push_back(*term);
    switch (node.kind) {
        case Kind::phrase:
            for (std::size_t i = 0; i < node.hashes.size(); ++i)
                out.push_back({key('w', node.hashes[i]), node.tokens[i].size()});
            break;
        case Kind::lang: out.push_back({key('l', node.hashes[0]), 0}); break;
        case Kind::all_of:
            for (const auto& child : node.children) required_keys(child, out);
            break;
        default: break;
    }
}

// Where a query that needs evaluating is indexed: under its presearch keys, each
// posting gated by one more required key when it has one, so that most candidates
// are turned away by a probe of the tweet's own keys before their code is touched.
// A conjunction whose only required key is its cheapest anchor ("(a OR b) c -d") is
// indexed under the other part instead, gated by that key.
struct Placement {
    std::vector<std::uint64_t> anchors;
    std::optional<std::uint64_t> gate;
};

Placement place(const QueryNode& root) {
    KeySet whole;
    if (!extract(root, whole)) return {};
    std::vector<KeyWeight> required;
    required_keys(root, required);
    auto gate_for = [&](const std::vector<std::uint64_t>& anchors) {
        std::optional<std::uint64_t> gate;
        std::size_t weight = 0;
        for (const auto& [k, w] : required) {
            if (std::find(anchors.begin(), anchors.end(), k) != anchors.end()) continue;
            if (!gate || w > weight) gate = k, weight = w;
        }
        return gate;
    };
    Placement best{whole.keys, gate_for(whole.keys)};
    if (best.gate || root.kind != Kind::all_of) return best;
    for (const auto& child : root.children) {
        KeySet part;
        if (!extract(child, part)) continue;
        const auto gate = gate_for(part.keys);
        if (gate && (!best.gate || part.keys.size() < best.anchors.size())) best = {std::move(part.keys), gate};
    }
    return best;
}

// The key of a term that one key decides, possibly negated, and whether it is negated.
std::optional<std::pair<std::uint64_t, bool>> single_key(const QueryNode& node) {
    const bool negated = node.kind == Kind::negation;
    const auto term = term_key(negated ? node.children[0] : node);
    if (!term) return std::nullopt;
    return std::make_pair(term->key, negated);
}

// For "a b" and "a -b" anchored on a: the other key and its sign.
std::optional<std::pair<std::uint64_t, bool>> pair_partner(const QueryNode& root, const std::vector<std::uint64_t>& keys) {
    if (root.kind != Kind::all_of || root.children.size() != 2 || keys.size() != 1) return std::nullopt;
    const auto first = single_key(root.children[0]);
    const auto second = single_key(root.children[1]);
    if (!first || !second) return std::nullopt;
    if (!first->second && first->first == keys[0]) return second;
    if (!second->second && second->first == keys[0]) return first;
    return std::nullopt;
}

// "a OR b" of two single-key terms: hit under a, it matches; hit under b, it matches
// unless a is there too (then it matched under a already).
bool is_or_pair(const QueryNode& root, const std::vector<std::uint64_t>& keys) {
    if (root.kind != Kind::any_of || root.children.size() != 2 || keys.size() != 2) return false;
    const auto first = single_key(root.children[0]);
    const auto second = single_key(root.children[1]);
    return first && second && !first->second && !second->second;
}

}  // namespace

void Percolator::KeyProbe::reset(const std::vector<std::uint64_t>& keys, std::uint64_t extra) {
    std::size_t size = 16;
    while (size < (keys.size() + 1) * 2) size *= 2;
    table_.assign(size, 0);
    mask_ = size - 1;
    has_zero_ = false;
    for (std::uint64_t k : keys) insert(k);
    insert(extra);
}

void Percolator::KeyProbe::insert(std::uint64_t k) {
    if (k == 0) {
        has_zero_ = true;
        return;
    }
    std::uint64_t i = (k ^ (k >> 29)) & mask_;
    while (table_[i] != 0 && table_[i] != k) i = (i + 1) & mask_;
    table_[i] = k;
}

bool Percolator::KeyProbe::contains(std::uint64_t k) const {
    if (k == 0) return has_zero_;
    for (std::uint64_t i = (k ^ (k >> 29)) & mask_;; i = (i + 1) & mask_) {
        if (table_[i] == k) return true;
        if (table_[i] == 0) return false;
    }
}

std::vector<std::uint64_t> presearch_keys(const QueryNode& query) { return place(query).anchors; }

bool Percolator::add(const ParsedQuery& query) {
    if (by_id_.count(query.id)) return false;
    std::uint32_t slot;
    if (!free_slots_.empty()) {
        slot = free_slots_.back();
        free_slots_.pop_back();
    } else {
        if (slots_.size() >= pair_bit) return false;  // 2^30 queries: beyond any machine's memory anyway
        slot = static_cast<std::uint32_t>(slots_.size());
        slots_.emplace_back();
    }
    Entry& e = slots_[slot];
    e.id = query.id;
    Placement placement = place(query.root);
    e.keys = std::move(placement.anchors);
    const Kind kind = query.root.kind;
    e.exact = kind == Kind::word || kind == Kind::hashtag || kind == Kind::mention || kind == Kind::from ||
              kind == Kind::to;
    const auto partner = e.exact ? std::nullopt : pair_partner(query.root, e.keys);
    const std::vector<Instruction> program = compile(query.root);
    if (arena_.size() + program.size() + 1 >= pair_bit) compact();
    e.code = static_cast<std::uint32_t>(arena_.size());
    arena_.push_back({Instruction::Op::header, static_cast<std::uint32_t>(program.size() + 1),
                      static_cast<std::uint64_t>(slot) << 32});
    arena_.insert(arena_.end(), program.begin(), program.end());
    if (e.exact) {
        for (std::uint64_t k : e.keys) postings_[k].push_back({.entry = slot | exact_bit});
    } else if (partner) {
        const Check check = partner->second ? Check::absent : Check::present;
        postings_[e.keys[0]].push_back({.entry = slot | pair_bit, .check = check, .other = partner->first});
    } else if (is_or_pair(query.root, e.keys)) {
        postings_[e.keys[0]].push_back({.entry = slot | exact_bit});
        postings_[e.keys[1]].push_back({.entry = slot | pair_bit, .check = Check::absent, .other = e.keys[0]});
    } else if (placement.gate) {
        for (std::uint64_t k : e.keys)
            postings_[k].push_back({.entry = e.code, .check = Check::present, .other = *placement.gate});
    } else {
        for (std::uint64_t k : e.keys) postings_[k].push_back({.entry = e.code});
    }
    by_id_.emplace(query.id, slot);
    return true;
}

bool Percolator::remove(const std::string& id) {
    const auto it = by_id_.find(id);
    if (it == by_id_.end()) return false;
    const std::uint32_t slot = it->second;
    Entry& e = slots_[slot];
    // Arena offsets stay below pair_bit, so the three forms of this query's postings are its own.
    auto ours = [&](const Posting& p) {
        return p.entry == e.code || p.entry == (slot | exact_bit) || p.entry == (slot | pair_bit);
    };
    for (std::uint64_t k : e.keys) {
        auto posting = postings_.find(k);
        auto& list = posting->second;
        *std::find_if(list.begin(), list.end(), ours) = list.back();
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
        for (Posting& posting : list)
            if (!(posting.entry & (exact_bit | pair_bit))) posting.entry = moved.at(posting.entry);
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
    probe_.reset(tweet_keys_, key('l', tweet.lang_hash));
    auto passes = [this](const Posting& p) {
        return p.check == Check::always || probe_.contains(p.other) == (p.check == Check::present);
    };
    // Three passes, so that memory is asked for well before it is needed: find every
    // posting list (and start loading it), decide what the postings alone decide, then
    // evaluate the candidates that passed their gate (loading their code ahead).
    lists_.clear();
    for (std::uint64_t k : tweet_keys_) {
        const auto posting = postings_.find(k);
        if (posting == postings_.end()) continue;
        __builtin_prefetch(posting->second.data());
        lists_.push_back(&posting->second);
    }
    constexpr std::size_t posting_prefetch = 16;
    pending_.clear();
    for (const std::vector<Posting>* list : lists_) {
        const Posting* postings = list->data();
        const std::size_t n = list->size();
        candidates_evaluated_ += n;
        for (std::size_t i = 0; i < n; ++i) {
            __builtin_prefetch(postings + i + posting_prefetch);
            const Posting& p = postings[i];
            const std::uint32_t entry = p.entry;
            if (entry & exact_bit) {
                out.push_back(&slots_[entry & ~exact_bit].id);
            } else if (entry & pair_bit) {
                if (passes(p)) out.push_back(&slots_[entry & ~pair_bit].id);
            } else if (passes(p)) {
                pending_.push_back(entry);
            }
        }
    }
    constexpr std::size_t code_prefetch = 8;
    Instruction* arena = arena_.data();
    for (std::size_t i = 0; i < pending_.size(); ++i) {
        if (i + code_prefetch < pending_.size()) __builtin_prefetch(arena + pending_[i + code_prefetch]);
        Instruction& header = arena[pending_[i]];
        if (static_cast<std::uint32_t>(header.term) == round_) continue;
        header.term = (header.term & ~0xFFFFFFFFULL) | round_;
        if (run(&header + 1, tweet)) out.push_back(&slots_[header.term >> 32].id);
    }
}

void Percolator::match_brute_force(const TweetFeatures& tweet, std::vector<const std::string*>& out) const {
    for (const Entry& e : slots_)
        if (!e.id.empty() && run(&arena_[e.code] + 1, tweet)) out.push_back(&e.id);
}

}  // namespace birdwatch
