#include "ingest/sources/stream_source.h"

#include "common/clock.h"
#include "ingest/stream/framer.h"

#include <curl/curl.h>

#include <ctime>

namespace birdwatch {

using namespace std::chrono_literals;

namespace {

// The v2 fields a Tweet needs: full text, time, language, entities, references, author.
const char* v2_stream_query =
    "?tweet.fields=created_at,lang,entities,referenced_tweets,in_reply_to_user_id,attachments,note_tweet,author_id"
    "&expansions=author_id,in_reply_to_user_id"
    "&user.fields=username,name,profile_image_url,public_metrics";

std::string form_encode(const oauth1::Params& params) {
    std::string body;
    for (const auto& [k, v] : params) {
        if (!body.empty()) body.push_back('&');
        body += oauth1::percent_encode(k) + "=" + oauth1::percent_encode(v);
    }
    return body;
}

}  // namespace

// What one connection attempt came to.
struct StreamSource::Attempt {
    enum class End { stopped, stalled, closed, network_error, http_error } end = End::closed;
    long status = 0;
    std::string detail;
};

StreamSource::Sleeper StreamSource::real_sleeper() {
    return &Source::sleep_unless_stopped;
}

StreamSource::StreamSource(StreamOptions options, BoundedChannel<StreamLine>& out, MetricsRegistry& metrics,
                           Sleeper sleeper)
    : Source(out),
      options_(std::move(options)),
      stall_timeout_(options_.stall_timeout.count() > 0                ? options_.stall_timeout
                     : options_.api == StreamOptions::Api::x_v2 ? std::chrono::milliseconds(20000)
                                                                 : std::chrono::milliseconds(90000)),
      sleeper_(std::move(sleeper)),
      metrics_(metrics),
      log_(make_logger("stream")),
      bytes_(metrics.counter("birdwatch_stream_bytes_total", "Bytes received from the stream (decoded)")),
      messages_(metrics.counter("birdwatch_stream_messages_total", "Messages framed from the stream")),
      keep_alives_(metrics.counter("birdwatch_stream_keepalives_total", "Keep-alive newlines received")),
      oversized_(metrics.counter("birdwatch_stream_oversized_total", "Messages skipped for exceeding the size limit")),
      connects_(metrics.counter("birdwatch_stream_connects_total", "Stream connections established (HTTP 200)")),
      reconnects_network_(metrics.counter("birdwatch_stream_reconnects_total", "Reconnects by cause", R"(cause="network")")),
      reconnects_stall_(metrics.counter("birdwatch_stream_reconnects_total", "Reconnects by cause", R"(cause="stall")")),
      reconnects_http_(metrics.counter("birdwatch_stream_reconnects_total", "Reconnects by cause", R"(cause="http")")),
      reconnects_rate_limited_(
          metrics.counter("birdwatch_stream_reconnects_total", "Reconnects by cause", R"(cause="rate_limited")")) {
    auto age = [](const std::atomic<std::int64_t>& at) {
        const std::int64_t t = at.load();
        return t == 0 ? -1.0 : static_cast<double>(now_epoch_ms() - t) / 1000.0;
    };
    metrics.gauge_fn("birdwatch_stream_seconds_since_last_byte", "Seconds since the stream sent anything (-1: never)",
                     [this, age] { return age(last_byte_ms_); });
    metrics.gauge_fn("birdwatch_stream_seconds_since_last_message", "Seconds since the last message (-1: never)",
                     [this, age] { return age(last_message_ms_); });
}

std::string StreamSource::credential_name() const {
    return options_.api == StreamOptions::Api::x_v2
               ? "the bearer token (source.x.bearer_token / BIRDWATCH_INGEST_SOURCE_X_BEARER_TOKEN)"
               : "the OAuth 1.0a credentials (source.x.consumer_key/consumer_secret/token/token_secret)";
}

StreamSource::Attempt StreamSource::connect_once(const std::stop_token& stop) {
    Attempt attempt;
    Framer framer(options_.delimited ? Framer::Mode::delimited : Framer::Mode::newline, options_.max_message_bytes,
                  {[&](std::string_view message) {
                       messages_.inc();
                       last_message_ms_ = now_epoch_ms();
                       policy_.delivered();
                       out_.push(StreamLine{std::string(message), now_epoch_us()});  // blocks when the pipeline lags
                   },
                   [&] { keep_alives_.inc(); },
                   [&](std::size_t bytes) {
                       oversized_.inc();
                       log_->warn("msg=\"skipping oversized stream message\" bytes_at_least={} limit={}", bytes,
                                  options_.max_message_bytes);
                   },
                   [&](std::string_view why) { log_->warn("msg=\"bad delimited length line\" why={}", logfmt(why)); }});

    struct Context {
        StreamSource* self;
        Framer* framer;
        Attempt* attempt;
        const std::stop_token* stop;
        CURL* curl;
        bool counted_connect = false;
    };
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
    Context context{this, &framer, &attempt, &stop, curl.get()};

    std::string url = options_.base_url;
    std::string body;
    curl_slist* headers = nullptr;
    if (options_.api == StreamOptions::Api::x_v2) {
        url += std::string("/2/tweets/search/stream") + v2_stream_query;
        headers = curl_slist_append(headers, ("Authorization: Bearer " + options_.bearer_token).c_str());
    } else {
        url += "/1.1/statuses/filter.json";
        oauth1::Params params;
        if (!options_.track.empty()) params.emplace_back("track", options_.track);
        if (!options_.follow.empty()) params.emplace_back("follow", options_.follow);
        if (!options_.locations.empty()) params.emplace_back("locations", options_.locations);
        if (!options_.language.empty()) params.emplace_back("language", options_.language);
        params.emplace_back("stall_warnings", "true");
        if (options_.delimited) params.emplace_back("delimited", "length");
        body = form_encode(params);
        const std::string authorization = oauth1::authorization_header(
            "POST", url, params, options_.oauth, oauth1::make_nonce(), std::to_string(std::time(nullptr)));
        headers = curl_slist_append(headers, ("Authorization: " + authorization).c_str());
        headers = curl_slist_append(headers, "Content-Type: application/x-www-form-urlencoded");
        curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, body.c_str());
    }
    curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl.get(), CURLOPT_USERAGENT, "birdwatch/0.1");
    curl_easy_setopt(curl.get(), CURLOPT_ACCEPT_ENCODING, "");  // gzip (and whatever libcurl can decode)
    curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
    curl_easy_setopt(curl.get(), CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &context);
    curl_easy_setopt(
        curl.get(), CURLOPT_WRITEFUNCTION, +[](char* data, std::size_t size, std::size_t n, void* user) -> std::size_t {
            auto* c = static_cast<Context*>(user);
            const std::size_t bytes = size * n;
            long status = 0;
            curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
            c->attempt->status = status;
            c->self->last_byte_ms_ = now_epoch_ms();
            if (status != 200) {  // an error document, not the stream
                if (c->attempt->detail.size() < 2048) c->attempt->detail.append(data, std::min<std::size_t>(bytes, 2048));
                return bytes;
            }
            if (!c->counted_connect) {
                c->counted_connect = true;
                c->self->connects_.inc();
                c->self->policy_.connected(ReconnectPolicy::Clock::now());
            }
            c->self->bytes_.inc(bytes);
            c->framer->feed(std::string_view(data, bytes));
            return c->stop->stop_requested() ? 0 : bytes;
        });
    curl_easy_setopt(curl.get(), CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl.get(), CURLOPT_XFERINFODATA, &context);
    curl_easy_setopt(
        curl.get(), CURLOPT_XFERINFOFUNCTION,
        +[](void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) -> int {
            auto* c = static_cast<Context*>(user);
            if (c->stop->stop_requested()) {
                c->attempt->end = Attempt::End::stopped;
                return 1;
            }
            if (now_epoch_ms() - c->self->last_byte_ms_ > c->self->stall_timeout_.count()) {
                c->attempt->end = Attempt::End::stalled;
                return 1;
            }
            return 0;
        });

    last_byte_ms_ = now_epoch_ms();  // the stall clock starts with the attempt
    const CURLcode code = curl_easy_perform(curl.get());
    curl_slist_free_all(headers);
    curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &attempt.status);
    if (stop.stop_requested()) {
        attempt.end = Attempt::End::stopped;
    } else if (attempt.end == Attempt::End::stalled) {
        attempt.detail = "no data for " + std::to_string(stall_timeout_.count()) + " ms";
    } else if (attempt.status != 0 && attempt.status != 200) {
        attempt.end = Attempt::End::http_error;
    } else if (code != CURLE_OK) {
        attempt.end = Attempt::End::network_error;
        attempt.detail = curl_easy_strerror(code);
    } else {
        attempt.end = Attempt::End::closed;  // the server ended the stream
        attempt.detail = "stream closed by the server";
    }
    return attempt;
}

void StreamSource::produce(std::stop_token stop) {
    bool rules_synced = options_.api != StreamOptions::Api::x_v2 || options_.rules.empty();
    while (!rules_synced && !stop.stop_requested()) {
        const RulesSyncResult rules = sync_rules(options_.base_url, options_.bearer_token, options_.rules);
        for (const auto& r : rules.rejected) log_->error("msg=\"stream rule rejected by X\" rule={}", logfmt(r));
        if (rules.ok) {
            log_->info("msg=\"stream rules synchronised\" added={} deleted={} rejected={}", rules.added.size(),
                       rules.deleted.size(), rules.rejected.size());
            rules_synced = true;
            break;
        }
        if (ReconnectPolicy::is_fatal_status(rules.http_status)) {
            fatal_error_ = "HTTP " + std::to_string(rules.http_status) + ": X rejected " + credential_name() + ": " +
                           rules.error;
            log_->critical("msg={}", logfmt(fatal_error_));
            return;
        }
        const auto cause = rules.http_status ? ReconnectPolicy::classify_status(rules.http_status)
                                             : ReconnectPolicy::Cause::network;
        const auto delay = policy_.failed(cause, ReconnectPolicy::Clock::now());
        log_->warn("msg=\"could not synchronise stream rules, retrying\" error={} delay_ms={}", logfmt(rules.error),
                   delay.count());
        if (!sleeper_(delay, stop)) return;
    }
    while (!stop.stop_requested()) {
        log_->info("msg=\"connecting\" api={} url={}", options_.api == StreamOptions::Api::x_v2 ? "x_v2" : "x_v1",
                   options_.base_url);
        const Attempt attempt = connect_once(stop);
        ReconnectPolicy::Cause cause = ReconnectPolicy::Cause::network;
        switch (attempt.end) {
            case Attempt::End::stopped: return;
            case Attempt::End::http_error:
                if (ReconnectPolicy::is_fatal_status(attempt.status)) {
                    fatal_error_ = "HTTP " + std::to_string(attempt.status) + ": X rejected " + credential_name() +
                                   ": " + attempt.detail.substr(0, 300);
                    log_->critical("msg={}", logfmt(fatal_error_));
                    return;
                }
                cause = ReconnectPolicy::classify_status(attempt.status);
                (cause == ReconnectPolicy::Cause::rate_limited ? reconnects_rate_limited_ : reconnects_http_).inc();
                break;
            case Attempt::End::stalled:
                cause = ReconnectPolicy::Cause::stall;
                reconnects_stall_.inc();
                break;
            case Attempt::End::closed:
            case Attempt::End::network_error:
                reconnects_network_.inc();
                break;
        }
        const auto delay = policy_.failed(cause, ReconnectPolicy::Clock::now());
        log_->warn("msg=\"stream ended, reconnecting\" status={} detail={} delay_ms={}", attempt.status,
                   logfmt(attempt.detail.substr(0, 300)), delay.count());
        if (!sleeper_(delay, stop)) return;
    }
}

}  // namespace birdwatch
