#pragma once
#include <cstdint>
#include <string>

namespace birdwatch {

// One line as a source received it, stamped on arrival so end-to-end latency
// can be measured from the moment ingest had the bytes.
struct StreamLine {
    std::string bytes;
    std::int64_t received_us = 0;  // epoch microseconds
};

}  // namespace birdwatch
