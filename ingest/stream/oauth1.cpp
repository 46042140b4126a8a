#include "ingest/stream/oauth1.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>

namespace birdwatch::oauth1 {

std::string percent_encode(const std::string& value) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : value) {
        const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                                c == '-' || c == '.' || c == '_' || c == '~';
        if (unreserved) {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 0xF]);
        }
    }
    return out;
}

std::string signature_base(const std::string& method, const std::string& base_url, const Params& params) {
    Params encoded;
    for (const auto& [k, v] : params) encoded.emplace_back(percent_encode(k), percent_encode(v));
    std::sort(encoded.begin(), encoded.end());
    std::string joined;
    for (const auto& [k, v] : encoded) {
        if (!joined.empty()) joined.push_back('&');
        joined += k + "=" + v;
    }
    return method + "&" + percent_encode(base_url) + "&" + percent_encode(joined);
}

std::string sign(const std::string& base, const std::string& consumer_secret, const std::string& token_secret) {
    const std::string key = percent_encode(consumer_secret) + "&" + percent_encode(token_secret);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    HMAC(EVP_sha1(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(base.data()),
         base.size(), digest, &length);
    std::string out(4 * ((length + 2) / 3), '\0');
    const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), digest, static_cast<int>(length));
    out.resize(static_cast<std::size_t>(written));
    return out;
}

std::string authorization_header(const std::string& method, const std::string& base_url, const Params& request_params,
                                 const Credentials& c, const std::string& nonce, const std::string& timestamp) {
    Params oauth = {{"oauth_consumer_key", c.consumer_key},   {"oauth_nonce", nonce},
                    {"oauth_signature_method", "HMAC-SHA1"}, {"oauth_timestamp", timestamp},
                    {"oauth_token", c.token},                 {"oauth_version", "1.0"}};
    Params all = request_params;
    all.insert(all.end(), oauth.begin(), oauth.end());
    oauth.emplace_back("oauth_signature", sign(signature_base(method, base_url, all), c.consumer_secret, c.token_secret));
    std::sort(oauth.begin(), oauth.end());
    std::string header = "OAuth ";
    for (std::size_t i = 0; i < oauth.size(); ++i) {
        if (i) header += ", ";
        header += percent_encode(oauth[i].first) + "=\"" + percent_encode(oauth[i].second) + "\"";
    }
    return header;
}

std::string make_nonce() {
    static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char bytes[32];
    RAND_bytes(bytes, sizeof bytes);
    std::string nonce;
    for (unsigned char b : bytes) nonce.push_back(alphabet[b % 62]);
    return nonce;
}

}  // namespace birdwatch::oauth1
