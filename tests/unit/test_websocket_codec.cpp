#include "fanout/websocket_codec.h"
#include "fanout/permessage_deflate.h"
#include "tests/support/client_frames.h"

#include <catch2/catch.hpp>

#include <vector>

#include <zlib.h>

using namespace birdwatch::websocket;
using birdwatch::test::client_frame;
using Kind = ClientEvent::Kind;

namespace {

std::vector<ClientEvent> read_all(ClientFrameReader& reader, std::string_view bytes) {
    reader.append(bytes.data(), bytes.size());
    std::vector<ClientEvent> events;
    while (auto event = reader.next()) events.push_back(std::move(*event));
    return events;
}

// The single event `bytes` produce: a violation's code and reason, or the event itself.
ClientEvent only_event(std::string_view bytes, std::size_t max_message = 1024) {
    ClientFrameReader reader(max_message);
    auto events = read_all(reader, bytes);
    REQUIRE(events.size() == 1);
    return events.front();
}

}  // namespace

TEST_CASE("the accept key and the server's frame headers follow RFC 6455", "[websocket]") {
    CHECK(accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");  // RFC 6455 section 1.3
    CHECK(frame_header(Opcode::text, 5).view() == std::string_view("\x81\x05", 2));
    CHECK(frame_header(Opcode::text, 125).view() == std::string_view("\x81\x7d", 2));
    CHECK(frame_header(Opcode::text, 126).view() == std::string_view("\x81\x7e\x00\x7e", 4));
    CHECK(frame_header(Opcode::text, 65535).view() == std::string_view("\x81\x7e\xff\xff", 4));
    CHECK(frame_header(Opcode::text, 65536).view() == std::string_view("\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10));
    CHECK(control_frame(Opcode::pong, "hi") == std::string("\x8a\x02hi", 4));
    CHECK(close_frame(1001) == std::string("\x88\x02\x03\xe9", 4));
    CHECK(close_frame(1002, "why") == std::string("\x88\x05\x03\xeawhy", 7));
}

TEST_CASE("the reader unmasks messages fed in any pieces, and several frames in one read", "[websocket]") {
    // RFC 6455 section 5.7: a masked "Hello".
    const std::string hello("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11);
    ClientFrameReader reader(1024);
    std::vector<ClientEvent> events;
    for (char byte : hello)
        for (auto& event : read_all(reader, std::string_view(&byte, 1))) events.push_back(std::move(event));
    REQUIRE(events.size() == 1);
    CHECK(events[0].kind == Kind::text);
    CHECK(events[0].payload == "Hello");

    const auto two = read_all(reader, client_frame(0x81, R"({"type":"subscribe"})") + client_frame(0x82, std::string("\xff\x00", 2)));
    REQUIRE(two.size() == 2);
    CHECK(two[0].payload == R"({"type":"subscribe"})");
    CHECK(two[1].kind == Kind::binary);  // binary is not checked for UTF-8
    CHECK(two[1].payload == std::string("\xff\x00", 2));

    const std::string big(70000, 'x');  // a 64-bit length
    ClientFrameReader roomy(100000);
    const auto large = read_all(roomy, client_frame(0x81, big));
    REQUIRE(large.size() == 1);
    CHECK(large[0].payload == big);
}

TEST_CASE("fragments join into one message, with control frames allowed between them", "[websocket]") {
    ClientFrameReader reader(1024);
    const auto events = read_all(reader, client_frame(0x01, "Hel") + client_frame(0x89, "ping data") +
                                             client_frame(0x00, "l") + client_frame(0x80, "o"));
    REQUIRE(events.size() == 2);
    CHECK(events[0].kind == Kind::ping);
    CHECK(events[0].payload == "ping data");
    CHECK(events[1].kind == Kind::text);
    CHECK(events[1].payload == "Hello");
}

TEST_CASE("close frames carry the client's code and reason", "[websocket]") {
    const auto with_code = only_event(client_frame(0x88, "\x03\xe8" "bye"));
    CHECK(with_code.kind == Kind::close);
    CHECK(with_code.code == 1000);
    CHECK(with_code.payload == "bye");
    const auto bare = only_event(client_frame(0x88, ""));
    CHECK(bare.kind == Kind::close);
    CHECK(bare.code == 0);
    CHECK(only_event(client_frame(0x8a, "p")).kind == Kind::pong);
}

TEST_CASE("each protocol violation has its close code and a reason, and ends the stream", "[websocket]") {
    struct Case {
        std::string bytes;
        std::uint16_t code;
        std::string reason;
    };
    const std::vector<Case> cases = {
        {client_frame(0x81, "hi", false), 1002, "a client's frames must be masked"},
        {client_frame(0xC1, "hi"), 1002, "reserved bits set, but no extension was negotiated"},
        {client_frame(0x83, "hi"), 1002, "unknown opcode 3"},
        {client_frame(0x8B, "hi"), 1002, "unknown opcode 11"},
        {client_frame(0x89, std::string(126, 'p')), 1002, "a control frame carries at most 125 bytes"},
        {client_frame(0x09, "p"), 1002, "a control frame must not be fragmented"},
        {client_frame(0x80, "tail"), 1002, "a continuation frame with no message to continue"},
        {client_frame(0x01, "a") + client_frame(0x81, "b"), 1002, "a new message before the previous one's final frame"},
        {client_frame(0x88, "\x03"), 1002, "a close frame with a 1-byte payload"},
        {client_frame(0x88, "\x03\xed"), 1002, "close code 1005 is not one a peer may send"},
        {client_frame(0x88, "\x03\xe8\xc3\x28"), 1007, "a close reason that is not valid UTF-8"},
        {client_frame(0x81, "\xc3\x28"), 1007, "a text message that is not valid UTF-8"},
        {client_frame(0x01, "\xe2\x82") + client_frame(0x80, "\xac\xff"), 1007, "a text message that is not valid UTF-8"},
        {std::string("\x81\xff\x80\x00\x00\x00\x00\x00\x00\x01", 10), 1002, "a frame length with its top bit set"},
    };
    for (const auto& c : cases) {
        INFO(c.reason);
        const auto event = only_event(c.bytes);
        CHECK(event.kind == Kind::violation);
        CHECK(event.code == c.code);
        CHECK(event.payload == c.reason);
    }
    // A split UTF-8 character across fragments is fine: only the whole message is checked.
    CHECK(only_event(client_frame(0x01, "\xe2\x82") + client_frame(0x80, "\xac")).payload == "\xe2\x82\xac");

    ClientFrameReader reader(1024);
    const auto events = read_all(reader, client_frame(0x81, "hi", false) + client_frame(0x81, "valid"));
    REQUIRE(events.size() == 1);  // nothing after the violation
    CHECK(events[0].kind == Kind::violation);
}

TEST_CASE("a message over the limit is refused (1009) from its header, before its payload arrives", "[websocket]") {
    ClientFrameReader reader(100);
    const std::string frame = client_frame(0x81, std::string(101, 'x'));
    const auto events = read_all(reader, frame.substr(0, 4));  // header only
    REQUIRE(events.size() == 1);
    CHECK(events[0].kind == Kind::violation);
    CHECK(events[0].code == 1009);
    CHECK(events[0].payload == "a message over 100 bytes");

    ClientFrameReader fragments(100);
    const auto joined = read_all(fragments, client_frame(0x01, std::string(60, 'x')) + client_frame(0x80, std::string(41, 'x')));
    REQUIRE(joined.size() == 1);
    CHECK(joined[0].code == 1009);
    ClientFrameReader exact(100);
    CHECK(read_all(exact, client_frame(0x01, std::string(60, 'x')) + client_frame(0x80, std::string(40, 'x')))
              .front()
              .payload.size() == 100);
}

TEST_CASE("permessage-deflate: which offers are accepted, and what is answered", "[websocket]") {
    const std::string shared = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    auto answer = [](std::string_view offers, bool own_allowed = true) {
        const auto agreed = negotiate_permessage_deflate(offers, own_allowed);
        return agreed ? agreed->response + " / " + std::to_string(agreed->window_bits) : std::string("declined");
    };
    CHECK(answer("permessage-deflate; client_max_window_bits") == shared + " / 0");  // Chromium's
    CHECK(answer("permessage-deflate") == shared + " / 0");
    CHECK(answer("x-webkit-deflate-frame, permessage-deflate; server_no_context_takeover") == shared + " / 0");
    CHECK(answer("permessage-deflate; server_max_window_bits=\"15\"") == shared + " / 0");
    // A small server window: a compressor of the connection's own, keeping its context...
    CHECK(answer("permessage-deflate; server_max_window_bits=10") ==
          "permessage-deflate; server_max_window_bits=10; client_no_context_takeover / 10");
    // ...unless the limit on them is reached, or it also forbids context takeover, or zlib cannot (8).
    CHECK(answer("permessage-deflate; server_max_window_bits=10", false) == "declined");
    CHECK(answer("permessage-deflate; server_max_window_bits=10; server_no_context_takeover") == "declined");
    CHECK(answer("permessage-deflate; server_max_window_bits=8") == "declined");
    CHECK(answer("permessage-deflate; server_max_window_bits=16") == "declined");
    CHECK(answer("permessage-deflate; server_max_window_bits=x1") == "declined");
    // Unknown parameters decline the offer (RFC 7692 5.1); a later acceptable offer is taken.
    CHECK(answer("permessage-deflate; x-unknown") == "declined");
    CHECK(answer("") == "declined");
    CHECK(answer("permessage-deflate; server_max_window_bits=9", false) == "declined");
    CHECK(answer("permessage-deflate; server_max_window_bits=9, permessage-deflate", false) == shared + " / 0");
}

TEST_CASE("permessage-deflate: a connection's own compressor keeps its context: repeats cost less, and each "
          "message inflates in order with one inflater that keeps its window",
          "[websocket]") {
    ContextDeflater own(10);
    const std::string message = R"({"type":"tweet","tweet":{"id":"1","text":"a window of its own for this client"}})";
    std::string first, second;
    own.compress(message, first);
    own.compress(message, second);
    CHECK(second.size() < first.size() / 3);  // the second refers back to the first
    // A standard inflater with context (window 10 bits) reads both in order.
    z_stream z{};
    REQUIRE(inflateInit2(&z, -10) == Z_OK);
    for (const std::string* part : {&first, &second}) {
        std::string in = *part + std::string("\0\0\xff\xff", 4), out(4096, '\0');
        z.next_in = reinterpret_cast<Bytef*>(in.data());
        z.avail_in = static_cast<uInt>(in.size());
        z.next_out = reinterpret_cast<Bytef*>(out.data());
        z.avail_out = static_cast<uInt>(out.size());
        REQUIRE(inflate(&z, Z_SYNC_FLUSH) == Z_OK);
        out.resize(out.size() - z.avail_out);
        CHECK(out == message);
    }
    inflateEnd(&z);
}

TEST_CASE("permessage-deflate: a message compressed alone inflates back, and a bomb stops at the limit",
          "[websocket]") {
    std::string text;
    for (int i = 0; i < 100; ++i) text += "{\"type\":\"tweet\",\"text\":\"" + std::to_string(i) + " birds\"}\n";
    const std::string deflated = deflate_message(text);
    CHECK(deflated.size() < text.size() / 3);
    const Inflated back = inflate_message(deflated, 1 << 20);
    CHECK(back.status == Inflated::Status::ok);
    CHECK(back.message == text);
    const std::string bomb = deflate_message(std::string(10 << 20, 'a'));  // 10 MiB of 'a' in ~10 KiB
    CHECK(bomb.size() < 64 * 1024);
    CHECK(inflate_message(bomb, 16 * 1024).status == Inflated::Status::too_big);
    CHECK(inflate_message("\xff\xff\xff\xff garbage", 1 << 20).status == Inflated::Status::corrupt);
}

TEST_CASE("permessage-deflate: the reader inflates RSV1 messages only once negotiated, never on control frames",
          "[websocket]") {
    const std::string deflated = deflate_message(R"({"type":"subscribe","query":"cats"})");
    const std::string frame = client_frame(0xC1, deflated);  // FIN + RSV1 + text
    CHECK(only_event(frame).code == close_code::protocol_error);  // not negotiated
    ClientFrameReader reader(1024);
    reader.accept_compressed();
    auto events = read_all(reader, frame + client_frame(0x81, "plain"));
    REQUIRE(events.size() == 2);
    CHECK(events[0].payload == R"({"type":"subscribe","query":"cats"})");
    CHECK(events[1].payload == "plain");  // an uncompressed message is fine too
    ClientFrameReader control(1024);
    control.accept_compressed();
    CHECK(read_all(control, client_frame(0xC9, "")).at(0).code == close_code::protocol_error);  // ping with RSV1
    ClientFrameReader small(64);
    small.accept_compressed();
    CHECK(read_all(small, client_frame(0xC1, deflate_message(std::string(1000, 'a')))).at(0).code ==
          close_code::too_big);
}
