#include "common/channel.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

using namespace birdwatch;
using namespace std::chrono_literals;

TEST_CASE("a belt holds at most its capacity", "[channel]") {
    BoundedChannel<int> belt(2);
    CHECK(belt.try_push(1));
    CHECK(belt.try_push(2));
    CHECK_FALSE(belt.try_push(3));
    CHECK(belt.size() == 2);
    CHECK(belt.pop() == 1);
    CHECK(belt.try_push(3));
}

TEST_CASE("closing a belt lets the consumer drain it, then ends", "[channel]") {
    BoundedChannel<int> belt(10);
    belt.push(1);
    belt.push(2);
    belt.close();
    CHECK_FALSE(belt.push(3));
    CHECK(belt.pop() == 1);
    CHECK(belt.pop() == 2);
    CHECK(belt.pop() == std::nullopt);
    CHECK(belt.closed_and_drained());
}

TEST_CASE("a producer blocked on a full belt is released by the consumer or by close", "[channel][threads]") {
    BoundedChannel<int> belt(1);
    belt.push(0);
    std::atomic<int> pushed{0};
    std::thread producer([&] {
        if (belt.push(1)) ++pushed;
        if (belt.push(2)) ++pushed;  // blocks until close()
    });
    REQUIRE(test::wait_until([&] { return belt.blocked_producers() == 1; }, 10s));
    CHECK(pushed == 0);
    CHECK(belt.pop() == 0);
    REQUIRE(test::wait_until([&] { return pushed == 1 && belt.blocked_producers() == 1; }, 10s));  // now blocked on 2
    belt.close();
    producer.join();
    CHECK(pushed == 1);
    CHECK(belt.blocked_producers() == 0);
}

TEST_CASE("pop_batch takes what is there up to the limit and times out when empty", "[channel]") {
    BoundedChannel<int> belt(10);
    for (int i = 0; i < 5; ++i) belt.push(i);
    std::vector<int> out;
    CHECK(belt.pop_batch(out, 3, 10ms) == 3);
    CHECK(belt.pop_batch(out, 3, 10ms) == 2);
    CHECK(out == std::vector<int>{0, 1, 2, 3, 4});
    const auto start = std::chrono::steady_clock::now();
    CHECK(belt.pop_batch(out, 3, 30ms) == 0);
    CHECK(std::chrono::steady_clock::now() - start >= 25ms);
}

TEST_CASE("a producer blocked on a full belt resumes once the belt has drained to half, not per item", "[channel][threads]") {
    BoundedChannel<int> belt(4);
    for (int i = 0; i < 4; ++i) belt.push(i);
    std::atomic<int> pushed{0};
    std::thread producer([&] {
        for (int i = 4; i < 8; ++i)
            if (belt.push(i)) ++pushed;
    });
    REQUIRE(test::wait_until([&] { return belt.blocked_producers() == 1; }, 10s));
    CHECK(belt.pop() == 0);  // 3 left: over half, the producer is left asleep
    CHECK(belt.producer_wakeups() == 0);
    CHECK(belt.pop() == 1);  // 2 left: half, it wakes and fills the belt again
    CHECK(belt.producer_wakeups() == 1);
    REQUIRE(test::wait_until([&] { return pushed == 2 && belt.blocked_producers() == 1; }, 10s));
    CHECK(belt.size() == 4);
    std::vector<int> rest;
    while (rest.size() < 6) rest.push_back(*belt.pop());
    producer.join();
    CHECK(rest == std::vector<int>{2, 3, 4, 5, 6, 7});
}
