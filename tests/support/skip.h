#pragma once
// A test case that cannot run on this machine says why and is reported as skipped, not
// passed: SKIP_TEST records the reason and ends the test case, and the test binary then
// exits with CTest's skip code (tests/support/catch_main.cpp) when nothing failed. Every
// CTest test runs one test case, so its summary shows that test as skipped. In CI,
// scripts/test fails the run on any skipped test: there everything is installed and
// everything must run.

#include <string>

namespace birdwatch::test {

inline constexpr int skip_return_code = 77;  // SKIP_RETURN_CODE of every CTest test

void record_skip(const std::string& reason);
bool any_test_skipped();

}  // namespace birdwatch::test

// Only in a test case's own body (it returns from it), before it starts anything.
#define SKIP_TEST(reason)                          \
    do {                                           \
        ::birdwatch::test::record_skip(reason);    \
        return;                                    \
    } while (false)
