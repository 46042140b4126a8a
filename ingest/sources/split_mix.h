#pragma once
// SplitMix64: tiny, fast, and the same sequence for a seed on every platform
// (unlike std distributions): the synthetic corpus and generated test queries are reproducible.

#include <cstdint>

namespace birdwatch {

class SplitMix64 {
public:
    explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
    std::uint64_t next() {
        std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }

private:
    std::uint64_t state_;
};

}  // namespace birdwatch
