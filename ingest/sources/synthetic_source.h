#pragma once
#include "ingest/sources/source.h"
#include "ingest/sources/synthetic_corpus.h"

#include <cstdint>

namespace birdwatch {

struct SyntheticOptions {
    std::uint64_t seed = 1;
    double rate = 50;          // tweets per second; 0 = as fast as the pipeline takes them
    std::uint64_t count = 0;   // 0 = unbounded
    std::int64_t start_ms = 0; // created_at of the first tweet; 0 = now
};

class SyntheticSource final : public Source {
public:
    SyntheticSource(const SyntheticOptions& options, BoundedChannel<StreamLine>& out);

    ~SyntheticSource() override { stop(); }

private:
    void produce(std::stop_token stop) override;
    SyntheticOptions options_;
};

}  // namespace birdwatch
