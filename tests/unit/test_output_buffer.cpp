// One connection's output buffer without a socket: order, watermarks, the cap, and
// which messages give way.

#include "fanout/output_buffer.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

using namespace birdwatch;

namespace {

Frame frame(std::size_t bytes, char fill) { return std::make_shared<const std::string>(bytes, fill); }
BatchPtr tweets(std::size_t bytes, char fill, std::uint64_t id = 0) { return single_batch(std::string(bytes, fill), id); }

// What the next write would put on the wire, and consumes it whole.
std::string drain_one(OutputBuffer& buffer) {
    std::vector<iovec> iov;
    buffer.next_write(iov);
    std::string out;
    for (const auto& v : iov) out.append(static_cast<const char*>(v.iov_base), v.iov_len);
    buffer.consume(out.size());
    return out;
}

std::string payload_of_text_frame(const std::string& wire) {
    REQUIRE(wire.size() >= 2);
    CHECK(static_cast<unsigned char>(wire[0]) == 0x81);  // FIN + text
    const auto length = static_cast<unsigned char>(wire[1]);
    const std::size_t header = length < 126 ? 2 : length == 126 ? 4 : 10;
    return wire.substr(header);
}

}  // namespace

TEST_CASE("output: control bytes first, then the replies' message, then the tweet batches, the final bytes last",
          "[hardening]") {
    OutputBuffer buffer(1 << 20);
    buffer.push_tweets(single_batch("t1"));
    buffer.push_reply(std::make_shared<const std::string>("r1"));
    buffer.push_reply(std::make_shared<const std::string>("r2"));
    buffer.push_control("PONG");
    buffer.set_final("BYE");
    buffer.push_tweets(single_batch("t2"));  // after the final bytes: never sent
    CHECK(buffer.buffered() == 2 + 4 + 4 + 3);
    CHECK(drain_one(buffer) == "PONG");
    CHECK(payload_of_text_frame(drain_one(buffer)) == "r1\nr2");
    CHECK(payload_of_text_frame(drain_one(buffer)) == "t1");
    CHECK(drain_one(buffer) == "BYE");
    CHECK(buffer.final_sent());
    CHECK(buffer.buffered() == 0);
    CHECK(drain_one(buffer).empty());
}

TEST_CASE("output: a partial write resumes where it stopped, and the bytes count until it completes", "[hardening]") {
    OutputBuffer buffer(1 << 20);
    buffer.push_tweets(tweets(1000, 'a'));
    buffer.push_tweets(tweets(1000, 'b'));
    std::vector<iovec> iov;
    buffer.next_write(iov);
    std::string wire;
    for (const auto& v : iov) wire.append(static_cast<const char*>(v.iov_base), v.iov_len);
    const OutputBuffer::Written first = buffer.consume(700);
    CHECK(first.messages == 0);
    CHECK(buffer.buffered() == 2000);
    iov.clear();
    buffer.next_write(iov);
    std::string rest;
    for (const auto& v : iov) rest.append(static_cast<const char*>(v.iov_base), v.iov_len);
    CHECK(wire.substr(700) == rest);
    const OutputBuffer::Written second = buffer.consume(rest.size());
    CHECK(second.messages == 2);
    CHECK(second.bytes == 2000);
    CHECK(buffer.buffered() == 0);
}

TEST_CASE("output: above the high watermark, below the low one, tweets give way at the cap, replies do not",
          "[hardening]") {
    OutputBuffer buffer(4000);  // high 2000, low 1000
    CHECK(buffer.below_low());
    for (int i = 0; i < 3; ++i) buffer.push_tweets(tweets(700, 'a'));
    CHECK(buffer.above_high());
    buffer.push_tweets(tweets(700, 'b'));
    buffer.push_tweets(tweets(700, 'c'));
    CHECK(buffer.take_dropped() == 0);
    CHECK(buffer.buffered() == 3500);
    // The cap: the oldest tweets are dropped to make room.
    buffer.push_tweets(tweets(700, 'd'));
    CHECK(buffer.take_dropped() == 1);
    CHECK(buffer.buffered() == 3500);
    // Replies are never dropped: tweets give way to them.
    CHECK(buffer.push_reply(frame(1000, 'r')));
    CHECK(buffer.take_dropped() == 1);
    CHECK(buffer.buffered() == 3800);
    CHECK(buffer.push_reply(frame(1500, 's')));
    CHECK(buffer.take_dropped() == 2);
    CHECK(buffer.buffered() == 3900);  // two tweets left
    // Nor is anything held beyond the cap: a reply or control frame that does not fit even
    // once every tweet is gone is refused.
    CHECK_FALSE(buffer.push_reply(frame(1600, 'r')));
    CHECK(buffer.take_dropped() == 2);
    CHECK(buffer.buffered() == 2500);
    CHECK_FALSE(buffer.push_control(std::string(1600, 'p')));
    CHECK(buffer.push_control(std::string(1500, 'p')));
    CHECK(buffer.buffered() == 4000);
    buffer.push_tweets(tweets(10, 'e'));  // no room even for a small tweet
    CHECK(buffer.take_dropped() == 1);
    CHECK(buffer.buffered() == 4000);
    // Pings and pongs cannot grow it either: the cap holds whatever is pushed.
    for (int i = 0; i < 10000; ++i) buffer.push_control("\x8a\x00");
    CHECK(buffer.buffered() == 4000);
    buffer.drop_pending();
    CHECK(buffer.buffered() == 1500);  // the control bytes stay
    CHECK_FALSE(buffer.below_low());
    CHECK(drain_one(buffer).size() == 1500);
    CHECK(buffer.below_low());
    buffer.discard();
    CHECK(buffer.buffered() == 0);
    CHECK(buffer.idle());
}

TEST_CASE("output: waiting replies leave as one message of at most 256, tweet batches as their own frames",
          "[hardening]") {
    OutputBuffer buffer(1 << 20);
    for (int i = 0; i < 300; ++i) buffer.push_reply(frame(10, 'x'));
    const std::string first = payload_of_text_frame(drain_one(buffer));
    CHECK(std::count(first.begin(), first.end(), '\n') == 255);
    const std::string second = payload_of_text_frame(drain_one(buffer));
    CHECK(std::count(second.begin(), second.end(), '\n') == 43);
    Batch::Builder builder;
    builder.add("a", 7);
    builder.add("b", 9);
    buffer.push_tweets(builder.finish());
    buffer.push_tweets(single_batch("c", 11));
    CHECK(drain_one(buffer) == "\x81\x03" "a\nb" "\x81\x01" "c");  // both in one write
}

TEST_CASE("output: a whole batch gives way at the cap, and its ids make the gap", "[hardening]") {
    OutputBuffer buffer(100);
    Batch::Builder builder;
    builder.add(std::string(30, 'a'), 5);
    builder.add(std::string(30, 'b'), 3);
    buffer.push_tweets(builder.finish());
    buffer.push_tweets(tweets(30, 'c', 8));
    buffer.push_tweets(tweets(30, 'd', 9));  // 120 > 100: the first batch, both its tweets, goes
    CHECK(buffer.take_dropped() == 2);
    const auto dropped = buffer.take_dropped_ids();
    CHECK(dropped.first == 3);
    CHECK(dropped.last == 5);
    CHECK(dropped.next_kept == 8);
    CHECK(buffer.buffered() == 60);
}

TEST_CASE("output: a connection that negotiated permessage-deflate gets the batch's compressed frame",
          "[hardening]") {
    OutputBuffer buffer(1 << 20);
    buffer.send_compressed();
    std::string text;
    for (int i = 0; i < 20; ++i) text += R"({"type":"tweet","text":"the same words again and again"})";
    const BatchPtr batch = single_batch(text, 1);
    buffer.push_tweets(batch);
    const std::string wire = drain_one(buffer);
    CHECK(static_cast<unsigned char>(wire[0]) == 0xC1);  // FIN + RSV1 + text
    CHECK(wire == batch->wire(true));
    CHECK(wire.size() < text.size() / 4);
}
