#include "fanout/permessage_deflate.h"

#include <zlib.h>

#include <cctype>
#include <cstring>
#include <memory>

namespace birdwatch::websocket {

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
    return true;
}

// One offer: "permessage-deflate; param[=value]; ..." -> the agreement, if acceptable.
std::optional<DeflateAgreement> acceptable(std::string_view offer, bool own_compressor_allowed) {
    std::size_t semicolon = offer.find(';');
    if (!iequals(trim(offer.substr(0, semicolon)), "permessage-deflate")) return std::nullopt;
    int server_window = 15;
    bool server_no_takeover = false;
    while (semicolon != std::string_view::npos) {
        offer.remove_prefix(semicolon + 1);
        semicolon = offer.find(';');
        const std::string_view param = trim(offer.substr(0, semicolon));
        const auto equals = param.find('=');
        const std::string_view name = trim(param.substr(0, equals));
        std::string_view value = equals == std::string_view::npos ? "" : trim(param.substr(equals + 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
        if (iequals(name, "server_max_window_bits")) {
            if (value.size() != 1 && value.size() != 2) return std::nullopt;
            server_window = 0;
            for (const char c : value) {
                if (c < '0' || c > '9') return std::nullopt;
                server_window = server_window * 10 + (c - '0');
            }
            // 8 is valid in RFC 7692, but zlib's raw deflate needs at least 9
            if (server_window < 9 || server_window > 15) return std::nullopt;
        } else if (iequals(name, "server_no_context_takeover")) {
            server_no_takeover = true;
        } else if (iequals(name, "client_max_window_bits") || iequals(name, "client_no_context_takeover")) {
            // what we answer covers them: the client keeps no context
        } else {
            return std::nullopt;  // unknown parameter: RFC 7692 5.1 says decline this offer
        }
    }
    if (server_window == 15)
        return DeflateAgreement{"permessage-deflate; server_no_context_takeover; client_no_context_takeover", 0};
    if (!own_compressor_allowed || server_no_takeover) return std::nullopt;
    return DeflateAgreement{"permessage-deflate; server_max_window_bits=" + std::to_string(server_window) +
                                "; client_no_context_takeover",
                            server_window};
}

// Appends `message` compressed by `z` and flushed to a byte boundary, without the final
// 00 00 ff ff (RFC 7692 7.2.1), to `out`.
void append_flushed(z_stream& z, std::string_view message, std::string& out) {
    const std::size_t start = out.size();
    out.resize(start + deflateBound(&z, message.size()) + 16);
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(message.data()));
    z.avail_in = static_cast<uInt>(message.size());
    std::size_t used = start;
    while (true) {
        z.next_out = reinterpret_cast<Bytef*>(out.data() + used);
        z.avail_out = static_cast<uInt>(out.size() - used);
        deflate(&z, Z_SYNC_FLUSH);
        used = out.size() - z.avail_out;
        if (z.avail_out != 0) break;  // all flushed
        out.resize(out.size() * 2);
    }
    if (used - start >= 4 && std::memcmp(out.data() + used - 4, "\0\0\xff\xff", 4) == 0) used -= 4;
    out.resize(used);
}

struct Deflater {
    z_stream stream{};
    Deflater() { deflateInit2(&stream, Z_BEST_SPEED, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY); }
    ~Deflater() { deflateEnd(&stream); }
};

struct Inflater {
    z_stream stream{};
    Inflater() { inflateInit2(&stream, -15); }
    ~Inflater() { inflateEnd(&stream); }
};

}  // namespace

std::optional<DeflateAgreement> negotiate_permessage_deflate(std::string_view offers, bool own_compressor_allowed) {
    while (!offers.empty()) {
        const auto comma = offers.find(',');
        if (auto agreement = acceptable(offers.substr(0, comma), own_compressor_allowed)) return agreement;
        if (comma == std::string_view::npos) break;
        offers.remove_prefix(comma + 1);
    }
    return std::nullopt;
}

struct ContextDeflater::Stream {
    z_stream z{};
};

ContextDeflater::ContextDeflater(int window_bits) : stream_(std::make_unique<Stream>()) {
    deflateInit2(&stream_->z, Z_BEST_SPEED, Z_DEFLATED, -window_bits, 1, Z_DEFAULT_STRATEGY);
}

ContextDeflater::~ContextDeflater() { deflateEnd(&stream_->z); }

void ContextDeflater::compress(std::string_view message, std::string& out) { append_flushed(stream_->z, message, out); }

std::string deflate_message(std::string_view message) {
    thread_local Deflater deflater;
    deflateReset(&deflater.stream);
    std::string out;
    append_flushed(deflater.stream, message, out);
    return out;
}

Inflated inflate_message(std::string_view compressed, std::size_t max_bytes) {
    thread_local Inflater inflater;
    z_stream& z = inflater.stream;
    inflateReset(&z);
    std::string in(compressed);
    in.append("\0\0\xff\xff", 4);
    Inflated result;
    std::string& out = result.message;
    char chunk[16384];
    z.next_in = reinterpret_cast<Bytef*>(in.data());
    z.avail_in = static_cast<uInt>(in.size());
    while (true) {
        z.next_out = reinterpret_cast<Bytef*>(chunk);
        z.avail_out = sizeof chunk;
        const int status = inflate(&z, Z_SYNC_FLUSH);
        if (status != Z_OK && status != Z_STREAM_END && status != Z_BUF_ERROR) {
            result.status = Inflated::Status::corrupt;
            return result;
        }
        out.append(chunk, sizeof chunk - z.avail_out);
        if (out.size() > max_bytes) {
            result.status = Inflated::Status::too_big;
            return result;
        }
        if (status == Z_STREAM_END || (z.avail_in == 0 && z.avail_out != 0)) break;
        if (status == Z_BUF_ERROR && z.avail_out != 0) {  // input left that cannot go anywhere
            result.status = Inflated::Status::corrupt;
            return result;
        }
    }
    return result;
}

}  // namespace birdwatch::websocket
