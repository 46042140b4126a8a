#include "fanout/websocket_codec.h"

#include "fanout/permessage_deflate.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <simdjson.h>

namespace birdwatch::websocket {

std::string accept_key(std::string_view client_key) {
    static constexpr std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    std::string text(client_key);
    text += guid;
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
    std::string out(4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1, '\0');
    const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), digest, SHA_DIGEST_LENGTH);
    out.resize(static_cast<std::size_t>(written));
    return out;
}

FrameHeader frame_header(Opcode opcode, std::uint64_t length, bool compressed) {
    FrameHeader h;
    h.bytes[0] = static_cast<char>(0x80 | (compressed ? 0x40 : 0) | static_cast<std::uint8_t>(opcode));
    if (length < 126) {
        h.bytes[1] = static_cast<char>(length);
        h.size = 2;
    } else if (length < 65536) {
        h.bytes[1] = 126;
        h.bytes[2] = static_cast<char>(length >> 8);
        h.bytes[3] = static_cast<char>(length & 0xFF);
        h.size = 4;
    } else {
        h.bytes[1] = 127;
        for (int i = 0; i < 8; ++i) h.bytes[2 + i] = static_cast<char>((length >> (8 * (7 - i))) & 0xFF);
        h.size = 10;
    }
    return h;
}

std::string control_frame(Opcode opcode, std::string_view payload) {
    std::string out(frame_header(opcode, payload.size()).view());
    out += payload;
    return out;
}

std::string close_frame(std::uint16_t code, std::string_view reason) {
    std::string payload;
    payload.push_back(static_cast<char>(code >> 8));
    payload.push_back(static_cast<char>(code & 0xFF));
    payload += reason.substr(0, 123);
    return control_frame(Opcode::close, payload);
}

namespace {

bool valid_utf8(std::string_view text) { return simdjson::validate_utf8(text.data(), text.size()); }

// RFC 6455 7.4: codes a peer may send (1004-1006 and 1015 are reserved for reporting, not sending).
bool sendable_close_code(std::uint16_t code) {
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

bool is_control(std::uint8_t opcode) { return opcode & 0x8; }
bool is_known(std::uint8_t opcode) { return opcode <= 0x2 || (opcode >= 0x8 && opcode <= 0xA); }

}  // namespace

std::optional<ClientEvent> ClientFrameReader::fail(std::uint16_t code, std::string why) {
    failed_ = true;
    buffer_.clear();
    message_.clear();
    return ClientEvent{ClientEvent::Kind::violation, std::move(why), code};
}

// Consumed bytes leave the buffer; a big message's buffer is not kept for an idle client.
void ClientFrameReader::compact() {
    if (consumed_ < buffer_.size()) {
        if (consumed_ > 4096) {
            buffer_.erase(0, consumed_);
            consumed_ = 0;
        }
        return;
    }
    consumed_ = 0;
    if (buffer_.capacity() > 4096) std::string().swap(buffer_);
    else buffer_.clear();
}

std::optional<ClientEvent> ClientFrameReader::next() {
    while (!failed_) {
        const auto* p = reinterpret_cast<const std::uint8_t*>(buffer_.data()) + consumed_;
        const std::size_t available = buffer_.size() - consumed_;
        if (available < 2) return std::nullopt;
        const bool fin = p[0] & 0x80;
        const std::uint8_t opcode = p[0] & 0x0F;
        const bool rsv1 = p[0] & 0x40;
        if (p[0] & 0x30 || (rsv1 && !deflate_))
            return fail(close_code::protocol_error, "reserved bits set, but no extension was negotiated");
        if (rsv1 && (is_control(opcode) || opcode == 0))
            return fail(close_code::protocol_error, "RSV1 on a control or continuation frame");
        if (!is_known(opcode)) return fail(close_code::protocol_error, "unknown opcode " + std::to_string(opcode));
        if (!(p[1] & 0x80)) return fail(close_code::protocol_error, "a client's frames must be masked");
        std::uint64_t length = p[1] & 0x7F;
        std::size_t header = 2;
        if (is_control(opcode)) {
            if (!fin) return fail(close_code::protocol_error, "a control frame must not be fragmented");
            if (length > 125) return fail(close_code::protocol_error, "a control frame carries at most 125 bytes");
        } else if (opcode == 0 && !message_opcode_) {
            return fail(close_code::protocol_error, "a continuation frame with no message to continue");
        } else if (opcode != 0 && message_opcode_) {
            return fail(close_code::protocol_error, "a new message before the previous one's final frame");
        }
        if (length == 126) {
            if (available < 4) return std::nullopt;
            length = (std::uint64_t{p[2]} << 8) | p[3];
            header = 4;
        } else if (length == 127) {
            if (available < 10) return std::nullopt;
            length = 0;
            for (int i = 0; i < 8; ++i) length = (length << 8) | p[2 + i];
            if (length >> 63) return fail(close_code::protocol_error, "a frame length with its top bit set");
            header = 10;
        }
        if (!is_control(opcode) && length > max_message_ - std::min(max_message_, message_.size()))
            return fail(close_code::too_big, "a message over " + std::to_string(max_message_) + " bytes");
        if (available < header + 4 + length) return std::nullopt;

        const std::uint8_t* mask = p + header;
        auto* payload = reinterpret_cast<std::uint8_t*>(buffer_.data()) + consumed_ + header + 4;
        for (std::uint64_t i = 0; i < length; ++i) payload[i] ^= mask[i & 3];
        const std::string_view data(reinterpret_cast<const char*>(payload), length);
        consumed_ += header + 4 + length;

        if (is_control(opcode)) {
            ClientEvent event{ClientEvent::Kind::pong, std::string(data), 0};
            if (opcode == 0x9) event.kind = ClientEvent::Kind::ping;
            if (opcode == 0x8) {
                event.kind = ClientEvent::Kind::close;
                if (length == 1) return fail(close_code::protocol_error, "a close frame with a 1-byte payload");
                if (length >= 2) {
                    event.code = static_cast<std::uint16_t>((payload[0] << 8) | payload[1]);
                    if (!sendable_close_code(event.code))
                        return fail(close_code::protocol_error, "close code " + std::to_string(event.code) + " is not one a peer may send");
                    event.payload = std::string(data.substr(2));
                    if (!valid_utf8(event.payload))
                        return fail(close_code::bad_payload, "a close reason that is not valid UTF-8");
                }
            }
            compact();
            return event;
        }
        const Opcode kind = opcode == 0 ? *message_opcode_ : static_cast<Opcode>(opcode);
        if (opcode != 0) message_compressed_ = rsv1;
        if (!fin) {
            message_opcode_ = kind;
            message_ += data;
            compact();
            continue;
        }
        std::string text;
        if (message_opcode_) {
            message_ += data;
            text.swap(message_);
            message_opcode_.reset();
        } else {
            text.assign(data);
        }
        compact();
        if (message_compressed_) {
            Inflated inflated = inflate_message(text, max_message_);
            if (inflated.status == Inflated::Status::too_big)
                return fail(close_code::too_big, "a message over " + std::to_string(max_message_) + " bytes inflated");
            if (inflated.status == Inflated::Status::corrupt)
                return fail(close_code::bad_payload, "a compressed message that is not valid DEFLATE");
            text = std::move(inflated.message);
        }
        if (kind == Opcode::text && !valid_utf8(text))
            return fail(close_code::bad_payload, "a text message that is not valid UTF-8");
        return ClientEvent{kind == Opcode::text ? ClientEvent::Kind::text : ClientEvent::Kind::binary, std::move(text), 0};
    }
    return std::nullopt;
}

}  // namespace birdwatch::websocket
