#pragma once
#include "ingest/sources/source.h"

#include <string>

namespace birdwatch {

struct ReplayOptions {
    std::string path;   // NDJSON: one tweet / stream payload per line
    double rate = 0;    // lines per second; 0 = as fast as the pipeline takes them
    bool loop = false;  // start over at the end of the file (benchmarks, demos)
};

class ReplaySource final : public Source {
public:
    // Throws ConfigError when the file cannot be opened.
    ReplaySource(const ReplayOptions& options, BoundedChannel<StreamLine>& out);

    ~ReplaySource() override { stop(); }

private:
    void produce(std::stop_token stop) override;
    ReplayOptions options_;
};

}  // namespace birdwatch
