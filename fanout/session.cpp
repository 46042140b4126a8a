#include "fanout/session.h"

#include "common/log.h"
#include "common/protocol.h"
#include "fanout/client_protocol.h"
#include "fanout/output_buffer.h"
#include "fanout/permessage_deflate.h"
#include "fanout/websocket_codec.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/field.hpp>

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <optional>
#include <unordered_map>
#include <utility>
#include <variant>

namespace birdwatch {

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using websocket::ClientEvent;

namespace {

constexpr std::size_t read_chunk = 64 * 1024;
constexpr int reads_per_turn = 16;  // then other connections on the loop get their turn

Frame make_frame(std::string text) { return std::make_shared<const std::string>(std::move(text)); }

std::string http_refusal(std::string_view status, std::string_view extra_header, std::string_view body) {
    std::string out = "HTTP/1.1 ";
    out += status;
    out += "\r\nServer: birdwatch-fanout\r\nContent-Type: text/plain\r\nConnection: close\r\n";
    out += extra_header;
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    out += body;
    return out;
}

}  // namespace

class WebSocketSession;

// What one loop's sessions share. Only that loop's thread touches it, except the
// counters, which /metrics reads.
struct alignas(64) LoopState {
    LoopState(net::io_context& io, std::size_t loop_index) : context(io), index(loop_index), sweep_timer(io) {}
    net::io_context& context;
    const std::size_t index;
    std::vector<char> read_buffer = std::vector<char>(read_chunk);
    std::vector<iovec> iov;  // scratch for one writev
    std::vector<std::weak_ptr<WebSocketSession>> sessions;  // for the idle and close deadlines
    net::steady_timer sweep_timer;
    LocalCounter frames_sent, bytes_sent, wire_bytes, frames_dropped, queued_bytes, compressed_connections;
};

struct WebSocketSessions::Impl {
    Impl(IoPool& pool, Hub& hub, StoreReader* store, const SessionOptions& options, MetricsRegistry& m);
    void sweep(LoopState& loop);
    template <typename Read>
    double total(Read read) const {
        std::int64_t sum = 0;
        for (const auto& loop : loops) sum += read(*loop).value();
        return static_cast<double>(sum);
    }

    Hub& hub;
    StoreReader* store;
    const SessionOptions& options;
    std::vector<std::unique_ptr<LoopState>> loops;
    std::chrono::milliseconds sweep_interval;
    Counter& messages_received;
    Counter& client_errors;
    Counter& rate_limited;
    Counter& budget_closes;
    Counter& slow_closes;
    Counter& idle_closes;
    Counter& protocol_errors;
    Counter& handshakes_refused;
    Counter& reads_paused;
    Counter& backpressure_closes;
    Counter& slow_client_gaps;
    Counter& backfills;
    client::Limits protocol_limits;
    std::atomic<std::size_t> own_compressors{0};  // connections with a compressor of their own
    FirstOccurrence first_violation;
    std::shared_ptr<spdlog::logger> log = make_logger("session");
};

// One class owns the socket and its output buffer (as in Beast's examples). It lives
// on one loop of the IoPool, which runs everything it does: no strand, no lock.
// Reads and writes are readiness waits plus plain recv/sendmsg on the non-blocking
// socket: a whole batch leaves in one writev, and a control frame can only be
// written between two whole frames, because there is only this one writer.
class WebSocketSession final : public Recipient, public std::enable_shared_from_this<WebSocketSession> {
public:
    WebSocketSession(tcp::socket socket, std::size_t loop_index, LoopState& loop, WebSocketSessions::Impl& shared)
        : socket_(std::move(socket)), loop_index_(loop_index), loop_(loop), shared_(shared),
          options_(shared.options), reader_(shared.options.max_message_bytes), output_(shared.options.max_queue_bytes),
          tokens_(shared.options.message_burst) {}

    void accept(const http::request<http::string_body>& upgrade, std::string_view early) {
        error_code ignored;
        socket_.non_blocking(true, ignored);
        loop_.sessions.push_back(weak_from_this());
        const auto key = upgrade[http::field::sec_websocket_key];
        if (upgrade[http::field::sec_websocket_version] != "13") {
            refuse(http_refusal("426 Upgrade Required", "Sec-WebSocket-Version: 13\r\n", "WebSocket version 13 only\n"));
            return;
        }
        if (key.empty() || key.size() > 64) {
            refuse(http_refusal("400 Bad Request", "", "missing or malformed Sec-WebSocket-Key\n"));
            return;
        }
        const std::string extensions = negotiate_compression(upgrade[http::field::sec_websocket_extensions]);
        output_.push_control("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             "Server: birdwatch-fanout\r\n" + extensions + "Sec-WebSocket-Accept: " +
                             websocket::accept_key(key) + "\r\n\r\n");
        joined_ = true;
        shared_.hub.join(loop_index_, shared_from_this());
        write();
        reader_.append(early.data(), early.size());
        read_more();
    }

    // The answer's Sec-WebSocket-Extensions line; empty when compression is off or no offer fits.
    std::string negotiate_compression(std::string_view offers) {
        if (!options_.permessage_deflate || offers.empty()) return {};
        // A compressor of its own is reserved before it is known to be wanted, so loops
        // racing for the last one cannot pass the limit; given back when not used.
        const bool own_allowed = shared_.own_compressors.fetch_add(1) < options_.own_compressors;
        const auto agreed = websocket::negotiate_permessage_deflate(offers, own_allowed);
        if (!agreed || !agreed->window_bits) shared_.own_compressors.fetch_sub(1);
        if (!agreed) return {};
        own_compressor_ = agreed->window_bits != 0;
        output_.send_compressed(own_compressor_ ? std::make_unique<websocket::ContextDeflater>(agreed->window_bits)
                                                : nullptr);
        reader_.accept_compressed();
        loop_.compressed_connections.add(1);
        compressed_ = true;
        return "Sec-WebSocket-Extensions: " + agreed->response + "\r\n";
    }

    bool deliver(const BatchPtr& batch) override {
        if (closing_) return false;
        output_.push_tweets(batch);
        if (const auto dropped = output_.take_dropped_ids(); dropped.last) note_slow_gap(dropped);
        note_level();
        if (flush_pending_) return false;
        flush_pending_ = true;
        return true;
    }

    bool notice(const Frame& frame) override {
        if (closing_) return false;
        if (!output_.push_reply(frame)) {
            over_cap();
            return false;
        }
        note_level();
        if (flush_pending_) return false;
        flush_pending_ = true;
        return true;
    }

    void flush() override {
        flush_pending_ = false;
        write();
    }

    void close(unsigned short code) override { start_close(code, false); }

    void live(const std::string& qid, std::uint64_t after_id) override {
        const auto held = queries_.find(qid);
        if (held == queries_.end()) return;
        held->second.live_after = after_id;
        auto waiting = std::move(held->second.waiting);
        for (auto& request : waiting) std::visit([this](auto& r) { act(r); }, request);
    }

    // From the loop's timer: the idle, close and slow-client deadlines.
    void sweep(Clock::time_point now) {
        if (finished_) return;
        if (over_since_ && now - *over_since_ >= options_.slow_close_after) return disconnect_slow_client();
        if (closing_) {
            if (now - closing_since_ >= options_.close_timeout) finish();
            return;
        }
        if (now - last_heard_ >= options_.idle_timeout) {
            shared_.idle_closes.inc();
            finish();
        } else if (!pinged_ && now - last_heard_ >= options_.idle_timeout / 2) {
            pinged_ = true;
            send_control(websocket::control_frame(websocket::Opcode::ping, {}));
        }
    }

    bool finished() const { return finished_; }

private:
    using error_code = boost::system::error_code;

    // ---------------------------------------------------------------- reading

    void wait_readable() {
        socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](error_code ec) { self->on_readable(ec); });
    }

    // Acts on what is already buffered, then waits for more unless the output is above
    // its high watermark: then reading pauses until the client has taken its bytes.
    void read_more() {
        if (!handle_events()) return;
        if (output_.above_high()) {
            read_paused_ = true;
            shared_.reads_paused.inc();
            return;
        }
        wait_readable();
    }

    void on_readable(error_code ec) {
        if (finished_) return;
        if (ec) return finish();
        for (int turn = 0; turn < reads_per_turn; ++turn) {
            const ssize_t n = ::recv(socket_.native_handle(), loop_.read_buffer.data(), loop_.read_buffer.size(), 0);
            if (n == 0) return finish();  // the client went away without a close frame
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) return read_more();
                return finish();
            }
            last_heard_ = Clock::now();
            pinged_ = false;
            reader_.append(loop_.read_buffer.data(), static_cast<std::size_t>(n));
            if (!handle_events()) return;
            if (output_.above_high() || static_cast<std::size_t>(n) < loop_.read_buffer.size()) return read_more();
        }
        net::post(loop_.context, [self = shared_from_this()] { self->on_readable({}); });
    }

    // False once reading should stop (a close frame or a violation). Leaves events in
    // the reader while the output is above its high watermark.
    bool handle_events() {
        while (!finished_ && !output_.above_high()) {
            auto event = reader_.next();
            if (!event) break;
            switch (event->kind) {
            case ClientEvent::Kind::text:
            case ClientEvent::Kind::binary:
                if (!closing_) on_message(event->payload);
                break;
            case ClientEvent::Kind::ping:
                if (!closing_) send_control(websocket::control_frame(websocket::Opcode::pong, event->payload));
                break;
            case ClientEvent::Kind::pong:
                break;
            case ClientEvent::Kind::close:
                if (closing_) {  // the answer to our close frame
                    finish();
                    return false;
                }
                // Echo the client's code, after which the connection is done.
                closing_ = true;
                closing_since_ = Clock::now();
                close_after_write_ = true;
                output_.drop_pending();
                output_.set_final(event->code ? websocket::close_frame(event->code)
                                              : websocket::control_frame(websocket::Opcode::close, {}));
                write();
                return false;
            case ClientEvent::Kind::violation:
                shared_.protocol_errors.inc();
                if (closing_) {  // already saying goodbye: no second close frame
                    finish();
                    return false;
                }
                if (shared_.first_violation.first(event->payload))
                    shared_.log->warn("msg=\"client broke the WebSocket protocol, closing it (logged once per kind)\" "
                                      "code={} error={}", event->code, logfmt(event->payload));
                output_.drop_pending();
                start_close(event->code, true, event->payload);
                return false;
            }
        }
        return !finished_;
    }

    // ---------------------------------------------------------------- the client protocol

    void on_message(const std::string& text) {
        shared_.messages_received.inc();
        if (!within_rate()) {
            shared_.rate_limited.inc();
            reply_error({"rate_limited", {}, "more than " + std::to_string(static_cast<int>(options_.messages_per_second)) +
                                                 " messages per second; slow down", {}});
        } else {
            auto parsed = client::parse_request(text, shared_.protocol_limits);
            if (auto* error = std::get_if<client::Error>(&parsed))
                reply_error(*error);
            else
                std::visit([this](auto& request) { act(request); }, std::get<client::Request>(parsed));
        }
        if (errors_ >= options_.error_budget && !closing_) {
            shared_.budget_closes.inc();
            start_close(websocket::close_code::policy_violation, false);
        }
    }

    void act(client::Subscribe& request) {
        const ParsedQuery& query = request.query;
        if (!queries_.count(query.id) && queries_.size() >= options_.max_subscriptions)
            return reply_error({"too_many_subscriptions", "query",
                                "at most " + std::to_string(options_.max_subscriptions) + " subscriptions per connection", {}});
        // A repeated subscribe keeps the first one's boundary: live delivery has not stopped.
        if (!queries_.count(query.id)) {
            const auto live_after = shared_.hub.subscribe(loop_index_, this, query.id, query.canonical);
            queries_.emplace(query.id, Subscription{query.canonical, live_after, {}});
        }
        reply(client::query_reply("subscribed", query.id, &query.canonical));
    }

    void act(client::Unsubscribe& request) {
        if (!queries_.erase(request.qid)) return not_subscribed(request.qid);
        shared_.hub.unsubscribe(loop_index_, this, request.qid);
        reply(client::query_reply("unsubscribed", request.qid, nullptr));
    }

    void act(client::History& request) {
        if (!shared_.store) return no_store();
        std::string canonical;
        std::uint64_t before = request.before, wait_for = 0;
        if (request.query) {
            canonical = request.query->canonical;
        } else {
            const auto held = queries_.find(request.qid);
            if (held == queries_.end()) return not_subscribed(request.qid);
            Subscription& subscription = held->second;
            canonical = subscription.canonical;
            if (!before) {
                // The first page of a subscription's history starts where its live delivery
                // began, so the two meet with nothing missing and nothing twice; until the
                // hub knows where that is, the request waits (a few, bounded).
                if (!subscription.live_after) return wait_for_live(subscription, std::move(request));
                if (*subscription.live_after != Hub::unknown_boundary) {  // 0: nothing came before
                    before = *subscription.live_after + 1;
                    wait_for = *subscription.live_after;
                }
            }
        }
        if (!shared_.store->history(request.qid, canonical, request.size, before, wait_for, store_reply())) busy();
    }

    void act(client::Resume& request) {
        if (!shared_.store) return no_store();
        const auto held = queries_.find(request.qid);
        if (held == queries_.end()) return not_subscribed(request.qid);
        if (!request.before_id && !held->second.live_after) return wait_for_live(held->second, std::move(request));
        if (request.before_id) shared_.backfills.inc();
        // Up to a gap's end, or to where live delivery began for this subscription (when that
        // is not known, the newest tweet the replica has received bounds the walk now).
        std::uint64_t before = request.before_id, wait_for = request.before_id;
        if (!request.before_id) {
            const std::uint64_t boundary = *held->second.live_after;
            const std::uint64_t until = boundary != Hub::unknown_boundary ? boundary : shared_.hub.latest_tweet_id();
            before = boundary != Hub::unknown_boundary || until ? until + 1 : 0;
            wait_for = until;
        }
        if (!shared_.store->resume(request.qid, held->second.canonical, request.since_id, before, wait_for,
                                   store_reply()))
            busy();
    }

    template <typename Request>
    void wait_for_live(auto& subscription, Request request) {
        if (subscription.waiting.size() >= max_waiting_requests) return busy();
        subscription.waiting.emplace_back(std::move(request));
    }

    void act(client::Get& request) {
        if (!shared_.store) return no_store();
        if (!shared_.store->get(request.id, store_reply())) busy();
    }

    // Store reads answer on a store thread: the reply hops back onto this connection's loop.
    StoreReader::Reply store_reply() {
        return [self = shared_from_this()](std::string text) {
            net::post(self->loop_.context, [self, frame = make_frame(std::move(text))] {
                if (self->finished_) return;
                self->reply(frame);
            });
        };
    }

    void not_subscribed(const std::string& qid) {
        reply_error({"not_subscribed", "qid", "this connection holds no subscription " + qid, {}});
    }
    void no_store() { reply_error({"no_store", {}, "this replica has no store configured", {}}); }
    void busy() { reply_error({"busy", {}, "too many store requests in flight, try again shortly", {}}); }

    void reply_error(const client::Error& error) {
        shared_.client_errors.inc();
        ++errors_;
        reply(client::error_reply(error));
    }

    // A token bucket per connection: a burst is fine, a flood is answered, not served.
    bool within_rate() {
        const auto now = Clock::now();
        tokens_ = std::min(options_.message_burst,
                           tokens_ + std::chrono::duration<double>(now - refilled_).count() * options_.messages_per_second);
        refilled_ = now;
        if (tokens_ < 1) return false;
        tokens_ -= 1;
        return true;
    }

    // ---------------------------------------------------------------- closing

    // Our close frame goes after what is queued; then we wait (close_timeout) for the
    // client's, unless `then_disconnect` (the client broke the protocol).
    void start_close(std::uint16_t code, bool then_disconnect, std::string_view reason = {}) {
        if (closing_ || finished_) return;
        closing_ = true;
        closing_since_ = Clock::now();
        close_after_write_ = then_disconnect;
        output_.set_final(websocket::close_frame(code, reason));
        write();
    }

    void refuse(std::string response) {
        shared_.handshakes_refused.inc();
        closing_ = true;
        closing_since_ = Clock::now();
        close_after_write_ = true;
        output_.set_final(std::move(response));  // not a frame: the HTTP answer, after which the socket closes
        write();
    }

    // The end of the connection, from any path: the socket closes at once and the
    // hub forgets it on the next turn of the loop (it may be mid-delivery now).
    void finish() {
        if (finished_) return;
        finished_ = true;
        closing_ = true;
        error_code ignored;
        socket_.close(ignored);
        output_.discard();
        note_level();
        if (compressed_) loop_.compressed_connections.add(-1);
        if (own_compressor_) shared_.own_compressors.fetch_sub(1);
        if (joined_)
            net::post(loop_.context, [self = shared_from_this()] { self->shared_.hub.leave(self->loop_index_, self.get()); });
    }

    // A client that does not read: no close frame would reach it. Reset (linger 0), so
    // the kernel does not keep its full send buffer either.
    void disconnect_slow_client() {
        shared_.slow_closes.inc();
        error_code ignored;
        socket_.set_option(net::socket_base::linger(true, 0), ignored);
        finish();
    }

    // ---------------------------------------------------------------- writing

    void reply(std::string text) { reply(make_frame(std::move(text))); }

    void reply(const Frame& frame) {
        if (!output_.push_reply(frame)) return over_cap();
        note_level();
        if (!flush_pending_) write();
    }

    void send_control(const std::string& bytes) {
        if (!output_.push_control(bytes)) return over_cap();
        note_level();
        write();
    }

    // A reply or control frame that does not fit under the cap: the client has not
    // read for a long time and keeps asking; it is past saving.
    void over_cap() {
        shared_.backpressure_closes.inc();
        disconnect_slow_client();
    }

    // Tweets dropped for this slow client: once it has caught up (below the low
    // watermark) it is told the ids in between, as for any gap, and resumes them. Each run
    // of drops is its own gap: tweets sent between two runs must not be resumed again.
    void note_slow_gap(const OutputBuffer::DroppedIds& dropped) {
        // The oldest tweet still queued ends the run: it is delivered, and it is stored,
        // so a resume up to it can wait for the store to hold it.
        const auto before = [](std::uint64_t last, std::uint64_t kept) { return kept > last ? kept : last + 1; };
        // The run goes on while its end was still queued (this drop took it, or went no further).
        if (!slow_gaps_.empty() && (dropped.first <= slow_gaps_.back().before || slow_gaps_.size() == max_slow_gaps)) {
            SlowGap& run = slow_gaps_.back();
            run.after = std::min(run.after, dropped.first - 1);
            run.last = std::max(run.last, dropped.last);
            run.before = before(run.last, dropped.next_kept);
            return;
        }
        slow_gaps_.push_back({dropped.first - 1, dropped.last, before(dropped.last, dropped.next_kept)});
    }

    void announce_slow_gaps() {
        for (const SlowGap& gap : slow_gaps_) {
            shared_.slow_client_gaps.inc();
            output_.push_reply(make_frame(client::gap_notice(gap.after, gap.before)));
        }
        slow_gaps_.clear();
    }

    // Keeps the loop's gauge and the slow-client clock in step with the buffer.
    void note_level() {
        if (const std::size_t dropped = output_.take_dropped()) loop_.frames_dropped.add(static_cast<std::int64_t>(dropped));
        const std::size_t now_bytes = output_.buffered();
        loop_.queued_bytes.add(static_cast<std::int64_t>(now_bytes) - static_cast<std::int64_t>(reported_bytes_));
        reported_bytes_ = now_bytes;
        if (output_.above_high()) {
            if (!over_since_) over_since_ = Clock::now();
        } else if (output_.below_low()) {
            over_since_.reset();
            announce_slow_gaps();
            if (read_paused_ && !finished_ && !closing_) {
                read_paused_ = false;
                net::post(loop_.context, [self = shared_from_this()] {
                    if (!self->finished_) self->read_more();
                });
            }
        }
    }

    // Writes until everything is out or the socket is full; then waits until it is writable.
    void write() {
        if (finished_ || waiting_writable_) return;
        while (true) {
            auto& iov = loop_.iov;
            iov.clear();
            output_.next_write(iov);
            if (iov.empty()) break;
            msghdr message{};
            message.msg_iov = iov.data();
            message.msg_iovlen = iov.size();
            const ssize_t n = ::sendmsg(socket_.native_handle(), &message, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                return finish();
            }
            loop_.wire_bytes.add(n);
            const OutputBuffer::Written done = output_.consume(static_cast<std::size_t>(n));
            if (done.messages) {
                loop_.frames_sent.add(static_cast<std::int64_t>(done.messages));
                loop_.bytes_sent.add(static_cast<std::int64_t>(done.bytes));
            }
            if (done.final_done && close_after_write_) return finish();
        }
        note_level();
        if (!output_.idle() && !output_.final_sent()) wait_writable();
    }

    void wait_writable() {
        waiting_writable_ = true;
        socket_.async_wait(tcp::socket::wait_write, [self = shared_from_this()](error_code ec) {
            self->waiting_writable_ = false;
            if (self->finished_) return;
            if (ec) return self->finish();
            self->write();
        });
    }

    tcp::socket socket_;
    const std::size_t loop_index_;
    LoopState& loop_;
    WebSocketSessions::Impl& shared_;
    const SessionOptions& options_;
    websocket::ClientFrameReader reader_;
    OutputBuffer output_;
    std::size_t reported_bytes_ = 0;  // output_.buffered() as last added to the loop's gauge
    struct SlowGap {
        std::uint64_t after = 0, last = 0, before = 0;
    };
    // Runs of dropped tweets not yet told; past max_slow_gaps, later runs join the last one
    // (its resume may then repeat tweets the client has: clients merge by id).
    static constexpr std::size_t max_slow_gaps = 8;
    std::vector<SlowGap> slow_gaps_;

    bool joined_ = false;
    bool compressed_ = false;        // permessage-deflate was negotiated
    bool own_compressor_ = false;    // ...with a compressor of its own (a small window)
    bool waiting_writable_ = false;
    bool read_paused_ = false;       // above the high watermark: not reading until below the low one
    bool flush_pending_ = false;     // delivered to during a burst: the hub calls flush() at its end
    bool closing_ = false;           // no more messages in or out
    bool close_after_write_ = false;
    bool finished_ = false;
    bool pinged_ = false;
    Clock::time_point last_heard_ = Clock::now();
    Clock::time_point closing_since_;
    std::optional<Clock::time_point> over_since_;  // above the high watermark since

    struct Subscription {
        std::string canonical;
        // The newest tweet before live delivery began (later ones come live, it and earlier
        // ones are history's); unknown until the hub has the ingest's live marker.
        std::optional<std::uint64_t> live_after;
        // History and resume asked for before live_after was known, served once it is.
        std::vector<std::variant<client::History, client::Resume>> waiting;
    };
    static constexpr std::size_t max_waiting_requests = 4;
    std::unordered_map<std::string, Subscription> queries_;  // this connection's, by qid
    std::size_t errors_ = 0;
    double tokens_ = 0;
    Clock::time_point refilled_ = Clock::now();
};

WebSocketSessions::Impl::Impl(IoPool& pool, Hub& hub_, StoreReader* store_, const SessionOptions& options_,
                              MetricsRegistry& m)
    : hub(hub_),
      store(store_),
      options(options_),
      sweep_interval(std::clamp<std::chrono::milliseconds>(
          std::min(options_.idle_timeout, options_.close_timeout) / 8, std::chrono::milliseconds(20),
          std::chrono::milliseconds(1000))),
      messages_received(m.counter("birdwatch_fanout_client_messages_total", "Messages received from clients")),
      client_errors(m.counter("birdwatch_fanout_client_errors_total", "Error replies sent to clients")),
      rate_limited(m.counter("birdwatch_fanout_rate_limited_total", "Client messages refused by the rate limit")),
      budget_closes(m.counter("birdwatch_fanout_error_budget_closes_total",
                              "Connections closed (1008) after spending their error budget")),
      slow_closes(m.counter("birdwatch_fanout_slow_client_closes_total",
                            "Connections reset for staying above the output high watermark for slow_close_ms, or over its cap")),
      idle_closes(m.counter("birdwatch_fanout_idle_closes_total", "Connections closed after idle_timeout of silence")),
      protocol_errors(m.counter("birdwatch_fanout_protocol_errors_total",
                                "Connections closed for breaking RFC 6455 (1002, 1007, 1009)")),
      handshakes_refused(m.counter("birdwatch_fanout_handshakes_refused_total",
                                   "Upgrade requests that were not valid RFC 6455 handshakes")),
      reads_paused(m.counter("birdwatch_fanout_reads_paused_total",
                             "Times a connection stopped reading because its output was above the high watermark")),
      backpressure_closes(m.counter("birdwatch_fanout_backpressure_closes_total",
                                    "Connections reset because a reply or control frame did not fit under max_queue_bytes")),
      slow_client_gaps(m.counter("birdwatch_fanout_gaps_total",
                                 "Gaps announced to clients (they resume the ids in between from the store)",
                                 R"(reason="slow_client")")),
      backfills(m.counter("birdwatch_fanout_backfill_requests_total",
                          "Resume requests naming a gap's end (before_id): clients filling a gap from the store")),
      protocol_limits{options_.max_page, 20} {
    for (std::size_t i = 0; i < pool.size(); ++i) loops.push_back(std::make_unique<LoopState>(pool.context(i), i));
    m.counter_fn("birdwatch_fanout_frames_sent_total", "Messages written to clients",
                 [this] { return total([](const LoopState& l) -> const LocalCounter& { return l.frames_sent; }); });
    m.counter_fn("birdwatch_fanout_bytes_sent_total", "Message bytes written to clients",
                 [this] { return total([](const LoopState& l) -> const LocalCounter& { return l.bytes_sent; }); });
    m.counter_fn("birdwatch_fanout_wire_bytes_total",
                 "Bytes written to client sockets: frames as sent (compressed or not), handshakes, control frames",
                 [this] { return total([](const LoopState& l) -> const LocalCounter& { return l.wire_bytes; }); });
    m.gauge_fn("birdwatch_fanout_compressed_connections", "Open connections that negotiated permessage-deflate",
               [this] { return total([](const LoopState& l) -> const LocalCounter& { return l.compressed_connections; }); });
    m.gauge_fn("birdwatch_fanout_own_compressor_connections",
               "Open connections compressing with a small window of their own (context takeover)",
               [this] { return static_cast<double>(own_compressors.load()); });
    m.counter_fn("birdwatch_fanout_frames_dropped_total", "Messages dropped from a slow client's full send queue",
                 [this] { return total([](const LoopState& l) -> const LocalCounter& { return l.frames_dropped; }); });
    m.gauge_fn("birdwatch_fanout_queued_bytes", "Bytes held in client output buffers",
               [this] { return total([](const LoopState& l) -> const LocalCounter& { return l.queued_bytes; }); });
    for (auto& loop : loops) sweep(*loop);
}

void WebSocketSessions::Impl::sweep(LoopState& loop) {
    const auto now = Clock::now();
    auto& sessions = loop.sessions;
    std::size_t kept = 0;
    for (std::size_t i = 0; i < sessions.size(); ++i) {
        const auto session = sessions[i].lock();
        if (!session || session->finished()) continue;
        session->sweep(now);
        if (kept != i) sessions[kept] = std::move(sessions[i]);  // never onto itself: that would empty it
        ++kept;
    }
    sessions.resize(kept);
    hub.start_overdue(loop.index);
    loop.sweep_timer.expires_after(sweep_interval);
    loop.sweep_timer.async_wait([this, &loop](boost::system::error_code ec) {
        if (!ec) sweep(loop);
    });
}

WebSocketSessions::WebSocketSessions(IoPool& loops, Hub& hub, StoreReader* store, const SessionOptions& options,
                                     MetricsRegistry& metrics)
    : impl_(std::make_unique<Impl>(loops, hub, store, options, metrics)) {}

WebSocketSessions::~WebSocketSessions() = default;

void WebSocketSessions::start(tcp::socket socket, std::size_t loop,
                              const http::request<http::string_body>& upgrade, std::string_view early) {
    std::make_shared<WebSocketSession>(std::move(socket), loop, *impl_->loops[loop], *impl_)->accept(upgrade, early);
}

}  // namespace birdwatch
