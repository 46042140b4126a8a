#include "fanout/session.h"

#include "common/json_text.h"
#include "common/log.h"
#include "common/query/query.h"
#include "fanout/websocket_codec.h"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/field.hpp>

#include <nlohmann/json.hpp>

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <optional>
#include <unordered_map>
#include <utility>

namespace birdwatch {

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using websocket::ClientEvent;

namespace {

// Queued messages leave in one WebSocket message of up to this many, '\n'-separated
// (docs/protocol.md): one write for many tweets when a client falls behind.
constexpr std::size_t max_batch_messages = 256;
constexpr std::size_t max_batch_bytes = 256 * 1024;
constexpr char message_separator = '\n';
constexpr std::size_t read_chunk = 64 * 1024;
constexpr int reads_per_turn = 16;  // then other connections on the loop get their turn

Frame error_reply(std::string_view code, std::string_view message, std::optional<std::size_t> position = {}) {
    std::string out = R"({"v":1,"type":"error","code":)";
    json_text::append_string(out, code);
    out += R"(,"message":)";
    json_text::append_string(out, message);
    if (position) {
        out += R"(,"position":)";
        json_text::append_int(out, static_cast<std::int64_t>(*position));
    }
    out += '}';
    return std::make_shared<const std::string>(std::move(out));
}

Frame query_reply(std::string_view type, const std::string& qid, const std::string* canonical) {
    std::string out = R"({"v":1,"type":)";
    json_text::append_string(out, type);
    out += R"(,"qid":)";
    json_text::append_string(out, qid);
    if (canonical) {
        out += R"(,"query":)";
        json_text::append_string(out, *canonical);
    }
    out += '}';
    return std::make_shared<const std::string>(std::move(out));
}

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
    explicit LoopState(net::io_context& io) : context(io), sweep_timer(io) {}
    net::io_context& context;
    std::vector<char> read_buffer = std::vector<char>(read_chunk);
    std::vector<iovec> iov;  // scratch for one writev
    std::vector<std::weak_ptr<WebSocketSession>> sessions;  // for the idle and close deadlines
    net::steady_timer sweep_timer;
    LocalCounter frames_sent, bytes_sent, frames_dropped, queued_bytes;
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
    FirstOccurrence first_violation;
    std::shared_ptr<spdlog::logger> log = make_logger("session");
};

// One class owns the socket and its write queue (as in Beast's examples). It lives
// on one loop of the IoPool, which runs everything it does: no strand, no lock.
// Reads and writes are readiness waits plus plain recv/sendmsg on the non-blocking
// socket: a whole batch leaves in one writev, and a control frame can only be
// written between two whole frames, because there is only this one writer.
class WebSocketSession final : public Recipient, public std::enable_shared_from_this<WebSocketSession> {
public:
    WebSocketSession(tcp::socket socket, std::size_t loop_index, LoopState& loop, WebSocketSessions::Impl& shared)
        : socket_(std::move(socket)), loop_index_(loop_index), loop_(loop), shared_(shared),
          options_(shared.options), reader_(shared.options.max_message_bytes), tokens_(shared.options.message_burst) {}

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
        control_ = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Server: birdwatch-fanout\r\nSec-WebSocket-Accept: " +
                   websocket::accept_key(key) + "\r\n\r\n";
        joined_ = true;
        shared_.hub.join(loop_index_, shared_from_this());
        write();
        reader_.append(early.data(), early.size());
        if (handle_events()) wait_readable();
    }

    bool deliver(const Frame& frame) override {
        enqueue(frame);
        if (flush_pending_) return false;
        flush_pending_ = true;
        return true;
    }

    void flush() override {
        flush_pending_ = false;
        write();
    }

    void close(unsigned short code) override { start_close(code, false); }

    // From the loop's timer: the idle and close deadlines.
    void sweep(Clock::time_point now) {
        if (finished_) return;
        if (closing_) {
            if (now - closing_since_ >= options_.close_timeout) finish();
            return;
        }
        if (now - last_heard_ >= options_.idle_timeout) {
            shared_.idle_closes.inc();
            finish();
        } else if (!pinged_ && now - last_heard_ >= options_.idle_timeout / 2) {
            pinged_ = true;
            control_ += websocket::control_frame(websocket::Opcode::ping, {});
            write();
        }
    }

    bool finished() const { return finished_; }

private:
    using error_code = boost::system::error_code;

    // ---------------------------------------------------------------- reading

    void wait_readable() {
        socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](error_code ec) { self->on_readable(ec); });
    }

    void on_readable(error_code ec) {
        if (finished_) return;
        if (ec) return finish();
        for (int turn = 0; turn < reads_per_turn; ++turn) {
            const ssize_t n = ::recv(socket_.native_handle(), loop_.read_buffer.data(), loop_.read_buffer.size(), 0);
            if (n == 0) return finish();  // the client went away without a close frame
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) return wait_readable();
                return finish();
            }
            last_heard_ = Clock::now();
            pinged_ = false;
            reader_.append(loop_.read_buffer.data(), static_cast<std::size_t>(n));
            if (!handle_events()) return;
            if (static_cast<std::size_t>(n) < loop_.read_buffer.size()) return wait_readable();
        }
        net::post(loop_.context, [self = shared_from_this()] { self->on_readable({}); });
    }

    // False once reading should stop (a close frame or a violation).
    bool handle_events() {
        while (auto event = reader_.next()) {
            if (finished_) return false;
            switch (event->kind) {
            case ClientEvent::Kind::text:
            case ClientEvent::Kind::binary:
                if (!closing_) on_message(event->payload);
                if (finished_) return false;
                break;
            case ClientEvent::Kind::ping:
                if (!closing_) {
                    control_ += websocket::control_frame(websocket::Opcode::pong, event->payload);
                    write();
                }
                break;
            case ClientEvent::Kind::pong:
                break;
            case ClientEvent::Kind::close:
                if (closing_) {  // the answer to our close frame
                    finish();
                    return false;
                }
                // Echo the client's code, after which the connection is done.
                drop_queue();
                closing_ = true;
                closing_since_ = Clock::now();
                close_after_write_ = true;
                close_frame_ = event->code ? websocket::close_frame(event->code) : websocket::control_frame(websocket::Opcode::close, {});
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
                                      "code={} error=\"{}\"", event->code, event->payload);
                drop_queue();
                start_close(event->code, true, event->payload);
                return false;
            }
        }
        return !finished_;
    }

    void on_message(const std::string& text) {
        shared_.messages_received.inc();
        if (Frame reply = within_rate() ? answer(text) : refuse_rate()) send(reply);  // store reads reply later
        if (errors_ >= options_.error_budget) {
            shared_.budget_closes.inc();
            start_close(websocket::close_code::policy_violation, false);
        }
    }

    // The client protocol (docs/protocol.md): every message gets exactly one reply.
    Frame answer(const std::string& text) {
        const auto message = nlohmann::json::parse(text, nullptr, false);
        if (!message.is_object()) return error("bad_message", "a message must be a JSON object");
        const auto type = message.find("type");
        if (type == message.end() || !type->is_string())
            return error("bad_message", "a message needs a \"type\" string");
        if (*type == "subscribe") {
            const auto query = message.find("query");
            if (query == message.end() || !query->is_string())
                return error("bad_message", "subscribe needs a \"query\" string");
            const QueryParse parse = parse_query(query->get<std::string>());
            if (!parse.query) return error("bad_query", parse.error.message, parse.error.position);
            if (!queries_.count(parse.query->id) && queries_.size() >= options_.max_subscriptions)
                return error("too_many_subscriptions",
                             "at most " + std::to_string(options_.max_subscriptions) + " subscriptions per connection");
            shared_.hub.subscribe(loop_index_, this, parse.query->id, parse.query->canonical);
            queries_[parse.query->id] = parse.query->canonical;
            return query_reply("subscribed", parse.query->id, &parse.query->canonical);
        }
        if (*type == "unsubscribe") {
            const auto qid = message.find("qid");
            if (qid == message.end() || !qid->is_string())
                return error("bad_message", "unsubscribe needs a \"qid\" string");
            if (!queries_.erase(qid->get<std::string>()))
                return error("not_subscribed", "this connection holds no subscription " + qid->get<std::string>());
            shared_.hub.unsubscribe(loop_index_, this, qid->get<std::string>());
            return query_reply("unsubscribed", qid->get<std::string>(), nullptr);
        }
        if (*type == "history" || *type == "resume" || *type == "get") return ask_store(*type, message);
        return error("unknown_type", "unknown message type \"" + type->get<std::string>() +
                                         "\" (expected subscribe, unsubscribe, history, resume or get)");
    }

    // Store reads answer asynchronously: the reply arrives through send().
    Frame ask_store(const std::string& type, const nlohmann::json& message) {
        StoreReader* store = shared_.store;
        if (!store) return error("no_store", "this replica has no store configured");
        auto text_field = [&](const char* name) -> std::optional<std::string> {
            const auto it = message.find(name);
            if (it == message.end() || it->is_null()) return std::string();
            if (!it->is_string()) return std::nullopt;
            return it->get<std::string>();
        };
        // Called on a store reader thread: hop back onto this connection's loop.
        StoreReader::Reply reply = [self = shared_from_this()](std::string text) {
            net::post(self->loop_.context, [self, frame = std::make_shared<const std::string>(std::move(text))] {
                self->send(frame);
            });
        };
        bool queued = false;
        if (type == "get") {
            const auto id = text_field("id");
            if (!id || id->empty()) return error("bad_message", "get needs an \"id\" string");
            queued = store->get(*id, std::move(reply));
        } else {
            const auto qid = text_field("qid");
            const auto position = text_field(type == "history" ? "before" : "since_id");
            if (!qid || !position) return error("bad_message", type + " needs string fields");
            std::string canonical;
            std::string id = *qid;
            if (qid->empty()) {  // history may name a query instead of a subscription
                const auto query = text_field("query");
                if (type != "history" || !query || query->empty())
                    return error("bad_message", type + " needs the \"qid\" of a subscription" +
                                                    (type == "history" ? " or a \"query\"" : ""));
                const QueryParse parse = parse_query(*query);
                if (!parse.query) return error("bad_query", parse.error.message, parse.error.position);
                canonical = parse.query->canonical;
                id = parse.query->id;
            } else {
                const auto held = queries_.find(*qid);
                if (held == queries_.end())
                    return error("not_subscribed", "this connection holds no subscription " + *qid);
                canonical = held->second;
            }
            if (type == "history") {
                std::size_t size = 20;
                if (const auto it = message.find("size"); it != message.end()) {
                    if (!it->is_number_unsigned() || it->get<std::size_t>() == 0)
                        return error("bad_message", "history size must be a positive integer");
                    size = it->get<std::size_t>();
                }
                queued = store->history(id, canonical, size, *position, std::move(reply));
            } else {
                queued = store->resume(id, canonical, *position, shared_.hub.latest_tweet_id(), std::move(reply));
            }
        }
        if (!queued) return error("busy", "too many store requests in flight, try again shortly");
        return nullptr;
    }

    Frame error(std::string_view code, std::string_view message, std::optional<std::size_t> position = {}) {
        shared_.client_errors.inc();
        ++errors_;
        return error_reply(code, message, position);
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

    Frame refuse_rate() {
        shared_.rate_limited.inc();
        return error("rate_limited", "more than " + std::to_string(static_cast<int>(options_.messages_per_second)) +
                                         " messages per second; slow down");
    }

    // ---------------------------------------------------------------- closing

    // Our close frame goes after what is queued; then we wait (close_timeout) for the
    // client's, unless `then_disconnect` (the client broke the protocol).
    void start_close(std::uint16_t code, bool then_disconnect, std::string_view reason = {}) {
        if (closing_ || finished_) return;
        closing_ = true;
        closing_since_ = Clock::now();
        close_after_write_ = then_disconnect;
        close_frame_ = websocket::close_frame(code, reason);
        write();
    }

    void refuse(std::string response) {
        shared_.handshakes_refused.inc();
        closing_ = true;
        closing_since_ = Clock::now();
        close_after_write_ = true;
        close_frame_ = std::move(response);  // not a frame: the HTTP answer, after which the socket closes
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
        drop_queue();
        std::vector<Frame>().swap(in_flight_);
        release(std::exchange(in_flight_bytes_, 0));
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

    void enqueue(const Frame& frame) {
        if (closing_) return;
        // Bounded memory: drop the oldest frames not yet being written.
        bool over = false;
        while (head_ < queue_.size() && queued_bytes_ + frame->size() > options_.max_queue_bytes) {
            release(queue_[head_]->size());
            queue_[head_++].reset();
            loop_.frames_dropped.add(1);
            over = true;
        }
        // Over the limit from the first drop until the queue drains below half of it. A client
        // that stays over for slow_close_after is not coming back: let it go.
        if (over || over_since_) {
            const auto now = Clock::now();
            if (over && !over_since_) over_since_ = now;
            if (over_since_ && queued_bytes_ < options_.max_queue_bytes / 2) over_since_.reset();
            if (over_since_ && now - *over_since_ >= options_.slow_close_after) return disconnect_slow_client();
        }
        queue_.push_back(frame);
        queued_bytes_ += frame->size();
        loop_.queued_bytes.add(static_cast<std::int64_t>(frame->size()));
    }

    void send(const Frame& frame) {
        enqueue(frame);
        if (!flush_pending_) write();
    }

    // Writes until everything is out or the socket is full; then waits until it is writable.
    void write() {
        if (finished_ || waiting_writable_) return;
        while (writing_ || start_next_write()) {
            build_iov();
            msghdr message{};
            message.msg_iov = loop_.iov.data();
            message.msg_iovlen = loop_.iov.size();
            const ssize_t n = ::sendmsg(socket_.native_handle(), &message, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) return wait_writable();
                return finish();
            }
            written_ += static_cast<std::size_t>(n);
            if (written_ == total_) complete_write();
            if (finished_) return;
        }
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

    // Control frames first, then a batch of queued messages, then (once all is out) our close frame.
    bool start_next_write() {
        if (close_sent_) return false;
        if (!control_.empty()) {
            owned_.swap(control_);
            control_.clear();
        } else if (head_ < queue_.size()) {
            std::size_t bytes = 0;  // the message: the frames and a separator between each two
            while (head_ < queue_.size() && in_flight_.size() < max_batch_messages &&
                   (in_flight_.empty() || bytes + 1 + queue_[head_]->size() <= max_batch_bytes)) {
                bytes += queue_[head_]->size() + (in_flight_.empty() ? 0 : 1);
                in_flight_.push_back(std::move(queue_[head_++]));
            }
            in_flight_bytes_ = bytes - (in_flight_.size() - 1);
            if (head_ == queue_.size()) {
                queue_.clear();
                head_ = 0;
            }
            header_ = websocket::frame_header(websocket::Opcode::text, bytes);
            total_ = header_.size + bytes;
        } else if (!close_frame_.empty()) {
            owned_.swap(close_frame_);
            close_frame_.clear();
            sending_close_ = true;
        } else {
            return false;
        }
        if (!owned_.empty()) total_ = owned_.size();
        written_ = 0;
        writing_ = true;
        return true;
    }

    // The iovecs of what is left of the current write: owned bytes, or a batch's
    // header and shared frames with separators between them (no copy).
    void build_iov() {
        auto& iov = loop_.iov;
        iov.clear();
        std::size_t skip = written_;
        auto add = [&](const char* data, std::size_t size) {
            if (skip >= size) {
                skip -= size;
                return;
            }
            iov.push_back({const_cast<char*>(data) + skip, size - skip});
            skip = 0;
        };
        if (!owned_.empty()) {
            add(owned_.data(), owned_.size());
            return;
        }
        add(header_.bytes.data(), header_.size);
        for (std::size_t i = 0; i < in_flight_.size() && iov.size() + 2 <= IOV_MAX; ++i) {
            if (i > 0) add(&message_separator, 1);
            add(in_flight_[i]->data(), in_flight_[i]->size());
        }
    }

    void complete_write() {
        writing_ = false;
        if (!owned_.empty()) {
            owned_.clear();
            if (owned_.capacity() > 1024) std::string().swap(owned_);
            if (sending_close_) {
                close_sent_ = true;
                if (close_after_write_) finish();
            }
            return;
        }
        const std::size_t bytes = std::exchange(in_flight_bytes_, 0);
        release(bytes);
        loop_.frames_sent.add(static_cast<std::int64_t>(in_flight_.size()));
        loop_.bytes_sent.add(static_cast<std::int64_t>(bytes));
        in_flight_.clear();
        if (in_flight_.capacity() > 16) std::vector<Frame>().swap(in_flight_);
    }

    // Messages not yet started are dropped; a batch being written still completes, so
    // a close frame after it starts on a frame boundary.
    void drop_queue() {
        std::size_t bytes = 0;
        for (std::size_t i = head_; i < queue_.size(); ++i) bytes += queue_[i]->size();
        std::vector<Frame>().swap(queue_);
        head_ = 0;
        release(bytes);
    }

    void release(std::size_t bytes) {
        queued_bytes_ -= bytes;
        loop_.queued_bytes.add(-static_cast<std::int64_t>(bytes));
    }

    tcp::socket socket_;
    const std::size_t loop_index_;
    LoopState& loop_;
    WebSocketSessions::Impl& shared_;
    const SessionOptions& options_;
    websocket::ClientFrameReader reader_;

    std::vector<Frame> queue_;         // waiting to be written, from head_ on
    std::size_t head_ = 0;
    std::vector<Frame> in_flight_;     // the batch being written, as one message
    std::size_t in_flight_bytes_ = 0;  // the sum of its frames' sizes
    std::string control_;              // handshake answer, pongs and pings waiting to be written
    std::string close_frame_;          // ours, written once everything before it is out
    std::string owned_;                // control bytes being written
    websocket::FrameHeader header_;    // the batch's
    std::size_t written_ = 0, total_ = 0;
    std::size_t queued_bytes_ = 0;     // waiting and in flight

    bool joined_ = false;
    bool writing_ = false;
    bool waiting_writable_ = false;
    bool flush_pending_ = false;     // delivered to during a burst: the hub calls flush() at its end
    bool closing_ = false;           // no more messages in or out
    bool sending_close_ = false;
    bool close_sent_ = false;
    bool close_after_write_ = false;
    bool finished_ = false;
    bool pinged_ = false;
    Clock::time_point last_heard_ = Clock::now();
    Clock::time_point closing_since_;
    std::optional<Clock::time_point> over_since_;

    std::unordered_map<std::string, std::string> queries_;  // this connection's subscriptions: qid -> canonical
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
                            "Connections reset for staying over the send queue limit")),
      idle_closes(m.counter("birdwatch_fanout_idle_closes_total", "Connections closed after idle_timeout of silence")),
      protocol_errors(m.counter("birdwatch_fanout_protocol_errors_total",
                                "Connections closed for breaking RFC 6455 (1002, 1007, 1009)")),
      handshakes_refused(m.counter("birdwatch_fanout_handshakes_refused_total",
                                   "Upgrade requests that were not valid RFC 6455 handshakes")) {
    for (std::size_t i = 0; i < pool.size(); ++i) loops.push_back(std::make_unique<LoopState>(pool.context(i)));
    m.counter_fn("birdwatch_fanout_frames_sent_total", "Messages written to clients",
                 [this] { return total([](const LoopState& l) -> const LocalCounter& { return l.frames_sent; }); });
    m.counter_fn("birdwatch_fanout_bytes_sent_total", "Message bytes written to clients",
                 [this] { return total([](const LoopState& l) -> const LocalCounter& { return l.bytes_sent; }); });
    m.counter_fn("birdwatch_fanout_frames_dropped_total", "Messages dropped from a slow client's full send queue",
                 [this] { return total([](const LoopState& l) -> const LocalCounter& { return l.frames_dropped; }); });
    m.gauge_fn("birdwatch_fanout_queued_bytes", "Bytes waiting in client send queues",
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
