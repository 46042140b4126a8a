#include "ingest/spool.h"
#include "tests/support/process.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

using namespace birdwatch;

namespace {
std::vector<std::string> records(int from, int to) {
    std::vector<std::string> out;
    for (int i = from; i < to; ++i) out.push_back("record-" + std::to_string(i) + std::string(i % 37, 'x'));
    return out;
}
std::vector<std::string> read_all(Spool& spool) {
    std::vector<std::string> out;
    while (spool.read(out, 7) > 0) {
    }
    return out;
}
}  // namespace

TEST_CASE("spool: records come back in order across segments, commit and rewind move the right cursor",
          "[persistence]") {
    test::TempDir dir;
    std::string error;
    Spool spool({dir.file("spool"), SpoolOptions::Fsync::never, std::chrono::milliseconds(0), 2000});
    for (int i = 0; i < 250; i += 10) REQUIRE(spool.append(records(i, i + 10), error));
    CHECK(spool.pending_records() == 250);
    CHECK(std::distance(std::filesystem::directory_iterator(dir.file("spool")), {}) > 3);  // it rotated

    std::vector<std::string> first;
    spool.read(first, 40);
    CHECK(first == records(0, 40));
    spool.rewind();  // the store refused: read the same again
    std::vector<std::string> again;
    spool.read(again, 40);
    CHECK(again == records(0, 40));
    REQUIRE(spool.commit(error));
    CHECK(spool.pending_records() == 210);
    std::vector<std::string> small;
    CHECK(spool.read(small, 100, 20) == 1);  // 12 + 13 bytes > 20: the limit stops the read after one record
    CHECK(spool.read(small, 100, 1) == 1);   // and never before one
    spool.rewind();
    CHECK(read_all(spool) == records(40, 250));
    REQUIRE(spool.commit(error));
    CHECK(spool.pending_records() == 0);
    std::vector<std::string> none;
    CHECK(spool.read(none, 10) == 0);
}

TEST_CASE("spool: reopening resumes at the checkpoint, and a torn record at the end is cut off", "[persistence]") {
    test::TempDir dir;
    std::string error;
    const SpoolOptions options{dir.file("spool"), SpoolOptions::Fsync::always, std::chrono::milliseconds(0), 1 << 20};
    {
        Spool spool(options);
        REQUIRE(spool.append(records(0, 50), error));
        std::vector<std::string> some;
        spool.read(some, 20);
        REQUIRE(spool.commit(error));
        REQUIRE(spool.append(records(50, 60), error));
    }
    // A crash in the middle of the next append leaves half a record behind.
    const std::string segment = dir.file("spool/segment-00000000000000000000.log");
    std::ofstream(segment, std::ios::app) << std::string("\x40\x00\x00\x00garbage", 11);
    {
        Spool spool(options);
        CHECK(spool.pending_records() == 40);
        CHECK(read_all(spool) == records(20, 60));
        REQUIRE(spool.append(records(60, 70), error));  // appends after the cut, readable again
        CHECK(read_all(spool) == records(60, 70));
        REQUIRE(spool.commit(error));
    }
    Spool reopened(options);
    CHECK(reopened.pending_records() == 0);
}

TEST_CASE("spool: the source position saved last is found at the next open, and a missing or damaged one reads as none",
          "[persistence]") {
    test::TempDir dir;
    std::string error;
    {
        Spool spool({dir.file("spool"), SpoolOptions::Fsync::always, std::chrono::milliseconds(0)});
        CHECK(spool.source_position() == 0);
        REQUIRE(spool.save_source_position(1783175888090631, error));
        REQUIRE(spool.save_source_position(1783175888090999, error));
    }
    {
        Spool spool({dir.file("spool"), SpoolOptions::Fsync::never, std::chrono::milliseconds(0)});
        CHECK(spool.source_position() == 1783175888090999);
    }
    std::ofstream(dir.file("spool/source-position")) << "garbage";
    CHECK(Spool({dir.file("spool"), SpoolOptions::Fsync::never, std::chrono::milliseconds(0)}).source_position() == 0);
    std::ofstream(dir.file("spool/source-position")) << "-5";
    CHECK(Spool({dir.file("spool"), SpoolOptions::Fsync::never, std::chrono::milliseconds(0)}).source_position() == 0);
    std::filesystem::remove(dir.file("spool/source-position"));
    CHECK(Spool({dir.file("spool"), SpoolOptions::Fsync::never, std::chrono::milliseconds(0)}).source_position() == 0);
}
