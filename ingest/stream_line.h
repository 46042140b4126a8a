#pragma once
#include <cstdint>
#include <string>

namespace birdwatch {

// One line as a source received it, stamped on arrival so end-to-end latency
// can be measured from the moment ingest had the bytes.
struct StreamLine {
    std::string bytes;
    std::int64_t received_us = 0;  // epoch microseconds
    // Where the source can resume after this line (Jetstream: the event's time_us); 0: no such place.
    std::int64_t position = 0;
};

}  // namespace birdwatch
