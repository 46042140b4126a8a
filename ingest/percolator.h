#pragma once
// Finds, for each tweet, the registered queries it matches. Like Lucene's Monitor,
// each query is indexed under a small set of terms of which at least one must occur
// in any tweet it matches (a conjunction needs only its most selective part; a
// disjunction needs one term from each alternative). A tweet's terms select the
// candidate queries; only candidates are evaluated. Cost grows with candidates,
// not with the number of registered queries.
//
// Single-threaded by design: it lives on the pipeline thread, and query additions
// and removals reach it through that thread's input, between tweets.

#include "common/query/program.h"

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace birdwatch {

class Percolator {
public:
    // False when a query with that id is already registered.
    bool add(const ParsedQuery& query);
    // False when no query has that id.
    bool remove(const std::string& id);
    std::size_t size() const { return by_id_.size(); }
    template <typename Visit>
    void for_each_id(Visit&& visit) const {
        for (const auto& [id, slot] : by_id_) visit(id);
    }

    // Appends the ids of all matching queries, each once, in no particular order.
    // The pointers stay valid until the next add() or remove().
    void match(const TweetFeatures& tweet, std::vector<const std::string*>& out);
    // The same result by running every registered query: the baseline for tests and benchmarks.
    void match_brute_force(const TweetFeatures& tweet, std::vector<const std::string*>& out) const;

    std::uint64_t candidates_evaluated() const { return candidates_evaluated_; }
    std::uint64_t compactions() const { return compactions_; }

private:
    // All programs live in one arena, each behind a header cell whose term holds
    // (slot << 32 | last round evaluated). A posting entry is either the arena offset
    // of a query's header, or, with the top bit set, the slot of a query that is a
    // single indexed term: such a query is hit at most once per tweet (a tweet's keys
    // are distinct) and hitting it is a match, so it needs no de-duplication, no
    // evaluation and no memory access. One cache miss per evaluated candidate, and
    // the posting list tells where the next ones are, so they are prefetched.
    // A query of two single-key terms, "a b" or "a -b" (the commonest shape after a
    // single term), is indexed under its anchor with the other key and its sign in the
    // posting itself: it too is hit at most once per tweet, and deciding it is one
    // probe of the tweet's own key set, with no memory access either. "a OR b" is
    // exact under a and, under b, a pair that needs a absent.
    static constexpr std::uint32_t exact_bit = 0x80000000u;
    static constexpr std::uint32_t pair_bit = 0x40000000u;

    struct Posting {
        std::uint32_t entry;      // arena offset, or slot | exact_bit, or slot | pair_bit
        bool negated = false;     // pair: the other key must be absent
        std::uint64_t other = 0;  // pair: the other key
    };
    // The tweet's keys, open-addressed: a pair's other key is looked up here.
    class KeyProbe {
    public:
        void reset(const std::vector<std::uint64_t>& keys);
        bool contains(std::uint64_t key) const;

    private:
        std::vector<std::uint64_t> table_;
        std::uint64_t mask_ = 0;
        bool has_zero_ = false;
    };

    struct Entry {
        std::string id;
        std::vector<std::uint64_t> keys;
        std::uint32_t code = 0;  // arena offset of the header (exact queries have one too, for brute force)
        bool exact = false;
    };
    void compact();

    std::vector<Entry> slots_;
    std::vector<Instruction> arena_;
    std::size_t dead_cells_ = 0;
    std::vector<std::uint32_t> free_slots_;
    std::unordered_map<std::string, std::uint32_t> by_id_;
    std::unordered_map<std::uint64_t, std::vector<Posting>> postings_;
    std::vector<std::uint64_t> tweet_keys_;
    KeyProbe probe_;
    std::uint32_t round_ = 0;
    std::uint64_t candidates_evaluated_ = 0;
    std::uint64_t compactions_ = 0;
};

// The presearch keys of an anchored query (empty for an unanchored one).
std::vector<std::uint64_t> presearch_keys(const QueryNode& query);

}  // namespace birdwatch
