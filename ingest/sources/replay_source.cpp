#include "ingest/sources/replay_source.h"

#include "common/clock.h"
#include "common/config.h"
#include "ingest/sources/rate_pacer.h"

#include <fstream>

namespace birdwatch {

ReplaySource::ReplaySource(const ReplayOptions& options, BoundedChannel<StreamLine>& out)
    : Source(out), options_(options) {
    if (!std::ifstream(options_.path)) throw ConfigError("source.replay.path: cannot open '" + options_.path + "'");
}

void ReplaySource::produce(std::stop_token stop) {
    RatePacer pacer(options_.rate);
    do {
        std::ifstream in(options_.path);
        std::string line;
        while (std::getline(in, line)) {
            if (!pacer.wait_turn(stop)) return;
            if (!out_.push(StreamLine{std::move(line), now_epoch_us()})) return;
            line = std::string();
        }
    } while (options_.loop && !stop.stop_requested());
}

}  // namespace birdwatch
