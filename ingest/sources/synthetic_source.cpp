#include "ingest/sources/synthetic_source.h"

#include "common/clock.h"
#include "ingest/sources/rate_pacer.h"

namespace birdwatch {

SyntheticSource::SyntheticSource(const SyntheticOptions& options, BoundedChannel<StreamLine>& out)
    : Source(out), options_(options) {}

void SyntheticSource::produce(std::stop_token stop) {
    const std::int64_t start_ms = options_.start_ms ? options_.start_ms : now_epoch_ms();
    const std::int64_t spacing_ms = options_.rate > 0 ? std::max<std::int64_t>(1, static_cast<std::int64_t>(1000 / options_.rate)) : 1;
    SyntheticCorpus corpus(options_.seed, start_ms, spacing_ms);
    RatePacer pacer(options_.rate);
    while (options_.count == 0 || corpus.produced() < options_.count) {
        if (!pacer.wait_turn(stop)) return;
        if (!out_.push(StreamLine{corpus.next(), now_epoch_us()})) return;
    }
}

}  // namespace birdwatch
