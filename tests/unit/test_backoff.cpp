#include "common/backoff.h"

#include <catch2/catch.hpp>

using namespace birdwatch;
using namespace std::chrono_literals;

TEST_CASE("linear backoff grows by its step and stops at the cap", "[backoff]") {
    Backoff b(250ms, 1000ms, Backoff::Growth::linear);
    CHECK(b.next() == 250ms);
    CHECK(b.next() == 500ms);
    CHECK(b.next() == 750ms);
    CHECK(b.next() == 1000ms);
    CHECK(b.next() == 1000ms);
}

TEST_CASE("exponential backoff doubles, caps, and restarts after reset", "[backoff]") {
    Backoff b(100ms, 5s, Backoff::Growth::exponential);
    CHECK(b.next() == 100ms);
    CHECK(b.next() == 200ms);
    CHECK(b.next() == 400ms);
    for (int i = 0; i < 40; ++i) b.next();  // far past the cap: no overflow
    CHECK(b.next() == 5s);
    b.reset();
    CHECK(b.next() == 100ms);
}
