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
    bool contains(const std::string& id) const { return by_id_.count(id) != 0; }
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
    // evaluation and no memory access.
    // A query of two single-key terms, "a b" or "a -b" (the commonest shape after a
    // single term), is indexed under its anchor with the other key and its sign in the
    // posting itself: it too is hit at most once per tweet, and deciding it is one
    // probe of the tweet's own key set, with no memory access either. "a OR b" is
    // exact under a and, under b, a pair that needs a absent.
    // Any other query is gated the same way when it requires a second key (a phrase's
    // other token, a lang:, another term): most of its candidates are turned away by
    // the probe, and only those that pass cost a cache miss on their code.
    static constexpr std::uint32_t exact_bit = 0x80000000u;
    static constexpr std::uint32_t pair_bit = 0x40000000u;

    enum class Check : std::uint8_t { always, present, absent };
    struct Posting {
        std::uint32_t entry;  // arena offset, or slot | exact_bit, or slot | pair_bit
        Check check = Check::always;
        std::uint64_t other = 0;  // the key that `check` looks for
    };
    // The tweet's keys (and its language), open-addressed: postings' other keys are looked up here.
    class KeyProbe {
    public:
        void reset(const std::vector<std::uint64_t>& keys, std::uint64_t extra);
        bool contains(std::uint64_t key) const;

    private:
        void insert(std::uint64_t key);

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
    std::vector<const std::vector<Posting>*> lists_;  // this tweet's posting lists
    std::vector<std::uint32_t> pending_;              // this tweet's candidates to evaluate (arena offsets)
    KeyProbe probe_;
    std::uint32_t round_ = 0;
    std::uint64_t candidates_evaluated_ = 0;
    std::uint64_t compactions_ = 0;
};

// The keys a query is indexed under (empty for an unanchored one).
std::vector<std::uint64_t> presearch_keys(const QueryNode& query);

}  // namespace birdwatch
