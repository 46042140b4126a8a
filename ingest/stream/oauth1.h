#pragma once
// OAuth 1.0a request signing (HMAC-SHA1), as X's "Creating a signature" page
// describes it: percent-encode (RFC 3986), sort by encoded key, build the base
// string METHOD&url&params, sign with consumer-secret&token-secret.

#include <string>
#include <utility>
#include <vector>

namespace birdwatch::oauth1 {

struct Credentials {
    std::string consumer_key, consumer_secret, token, token_secret;
};

using Params = std::vector<std::pair<std::string, std::string>>;

std::string percent_encode(const std::string& value);
std::string signature_base(const std::string& method, const std::string& base_url, const Params& params);
std::string sign(const std::string& base, const std::string& consumer_secret, const std::string& token_secret);

// The Authorization header value for a request whose query/body parameters are
// `request_params`; `nonce` and `timestamp` are explicit so the signature is testable.
std::string authorization_header(const std::string& method, const std::string& base_url, const Params& request_params,
                                 const Credentials& credentials, const std::string& nonce,
                                 const std::string& timestamp);

// 32 random alphanumerics from a cryptographic source.
std::string make_nonce();

}  // namespace birdwatch::oauth1
