// The fanout's default loop count follows the cores the process may run on.

#include "fanout/usable_cores.h"

#include <catch2/catch.hpp>

#include <sched.h>

#include <thread>

TEST_CASE("usable cores: the affinity mask counts, not the machine's cores") {
    cpu_set_t all;
    REQUIRE(sched_getaffinity(0, sizeof all, &all) == 0);
    const unsigned allowed = static_cast<unsigned>(CPU_COUNT(&all));
    CHECK(birdwatch::usable_cores() >= 1);
    CHECK(birdwatch::usable_cores() <= allowed);
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
        if (CPU_ISSET(cpu, &all)) {
            CPU_SET(cpu, &one);
            break;
        }
    REQUIRE(sched_setaffinity(0, sizeof one, &one) == 0);  // as `taskset -c <one core>` would
    const unsigned pinned = birdwatch::usable_cores();
    REQUIRE(sched_setaffinity(0, sizeof all, &all) == 0);
    CHECK(pinned == 1);
}
