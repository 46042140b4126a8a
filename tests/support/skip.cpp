#include "tests/support/skip.h"

#include <cstdio>

namespace birdwatch::test {
namespace {
bool skipped = false;
}

void record_skip(const std::string& reason) {
    std::fprintf(stderr, "SKIPPED: %s\n", reason.c_str());
    skipped = true;
}

bool any_test_skipped() { return skipped; }

}  // namespace birdwatch::test
