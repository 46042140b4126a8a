// Catch's main, except that a run in which nothing failed but a test case skipped (SKIP_TEST)
// exits with CTest's skip code.
#define CATCH_CONFIG_RUNNER
#include "tests/support/skip.h"

#include <catch2/catch.hpp>

int main(int argc, char* argv[]) {
    const int failed = Catch::Session().run(argc, argv);
    if (failed == 0 && birdwatch::test::any_test_skipped()) return birdwatch::test::skip_return_code;
    return failed;
}
