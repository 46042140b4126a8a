#pragma once
// RFC 6455 for the server side, with no I/O: the handshake's accept key, the
// frames this server sends (unmasked, never fragmented), and a reader that turns
// the bytes a client sends into messages and control frames while enforcing what
// a server must: masked frames, no reserved bits, short unfragmented control
// frames, continuation order, UTF-8 text and a maximum message size.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace birdwatch::websocket {

enum class Opcode : std::uint8_t { continuation = 0x0, text = 0x1, binary = 0x2, close = 0x8, ping = 0x9, pong = 0xA };

namespace close_code {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t going_away = 1001;
inline constexpr std::uint16_t protocol_error = 1002;
inline constexpr std::uint16_t bad_payload = 1007;
inline constexpr std::uint16_t policy_violation = 1008;
inline constexpr std::uint16_t too_big = 1009;
inline constexpr std::uint16_t try_again_later = 1013;
}  // namespace close_code

// Sec-WebSocket-Accept for a client's Sec-WebSocket-Key.
std::string accept_key(std::string_view client_key);

// The header of a final, unmasked frame carrying `length` payload bytes.
struct FrameHeader {
    std::array<char, 10> bytes{};
    std::size_t size = 0;
    std::string_view view() const { return {bytes.data(), size}; }
};
// `compressed`: RSV1 set, the payload is permessage-deflate (fanout/permessage_deflate.h).
FrameHeader frame_header(Opcode opcode, std::uint64_t length, bool compressed = false);
std::string control_frame(Opcode opcode, std::string_view payload);  // payload of at most 125 bytes
std::string close_frame(std::uint16_t code, std::string_view reason = {});

struct ClientEvent {
    enum class Kind { text, binary, ping, pong, close, violation };
    Kind kind;
    std::string payload;     // the message, the ping/pong data, the close reason, or what was violated
    std::uint16_t code = 0;  // close: the client's code (0: none given); violation: the code to close with
};

class ClientFrameReader {
public:
    explicit ClientFrameReader(std::size_t max_message_bytes) : max_message_(max_message_bytes) {}

    void append(const char* data, std::size_t size) { buffer_.append(data, size); }
    // permessage-deflate was negotiated: a data message's first frame may set RSV1.
    void accept_compressed() { deflate_ = true; }
    // The next complete message or control frame, if the bytes so far hold one.
    // After a violation there is nothing more.
    std::optional<ClientEvent> next();

private:
    std::optional<ClientEvent> fail(std::uint16_t code, std::string why);
    void compact();

    std::size_t max_message_;
    std::string buffer_;        // received, not yet consumed from `consumed_` on
    std::size_t consumed_ = 0;
    std::string message_;       // a fragmented message's payload so far
    std::optional<Opcode> message_opcode_;  // set while a fragmented message is open
    bool message_compressed_ = false;       // the open message's first frame set RSV1
    bool deflate_ = false;
    bool failed_ = false;
};

}  // namespace birdwatch::websocket
