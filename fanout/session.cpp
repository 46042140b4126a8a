#include "fanout/session.h"

#include "common/json_text.h"
#include "common/log.h"
#include "common/query/query.h"

#include <boost/asio/post.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>

#include <nlohmann/json.hpp>

#include <deque>
#include <optional>
#include <unordered_map>

namespace birdwatch {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;

SessionMetrics::SessionMetrics(MetricsRegistry& m)
    : frames_sent(m.counter("birdwatch_fanout_frames_sent_total", "WebSocket frames written to clients")),
      bytes_sent(m.counter("birdwatch_fanout_bytes_sent_total", "Payload bytes written to clients")),
      frames_dropped(m.counter("birdwatch_fanout_frames_dropped_total",
                               "Frames dropped from a slow client's full send queue")),
      messages_received(m.counter("birdwatch_fanout_client_messages_total", "Messages received from clients")),
      client_errors(m.counter("birdwatch_fanout_client_errors_total", "Error replies sent to clients")),
      rate_limited(m.counter("birdwatch_fanout_rate_limited_total", "Client messages refused by the rate limit")),
      budget_closes(m.counter("birdwatch_fanout_error_budget_closes_total",
                              "Connections closed (1008) after spending their error budget")),
      slow_closes(m.counter("birdwatch_fanout_slow_client_closes_total",
                            "Connections closed (1013) for staying over the send queue limit")),
      queued_bytes(m.gauge("birdwatch_fanout_queued_bytes", "Bytes waiting in client send queues")) {}

namespace {

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

// Queued messages leave in one WebSocket message of up to this many, '\n'-separated
// (docs/protocol.md): one write for many tweets when a client falls behind.
constexpr std::size_t max_batch_messages = 256;
constexpr std::size_t max_batch_bytes = 256 * 1024;
constexpr char message_separator = '\n';

// One class owns the socket and its write queue (as in Beast's examples). It lives
// on one loop of the IoPool, which runs everything it does: no strand, no lock.
class WebSocketSession final : public Recipient, public std::enable_shared_from_this<WebSocketSession> {
public:
    WebSocketSession(net::ip::tcp::socket socket, std::size_t loop, Hub& hub, StoreReader* store,
                     const SessionOptions& options, SessionMetrics& metrics)
        : ws_(std::move(socket)), loop_(loop), hub_(hub), store_(store), options_(options), metrics_(metrics),
          tokens_(options.message_burst) {}

    ~WebSocketSession() override { metrics_.queued_bytes.add(-static_cast<std::int64_t>(queued_bytes_)); }

    void run(beast::http::request<beast::http::string_body> upgrade) {
        auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::server);
        timeouts.idle_timeout = options_.idle_timeout;  // Beast pings at half of it, closes after it
        ws_.set_option(timeouts);
        ws_.set_option(websocket::stream_base::decorator(
            [](websocket::response_type& res) { res.set(beast::http::field::server, "birdwatch-fanout"); }));
        ws_.read_message_max(options_.max_message_bytes);
        ws_.text(true);
        ws_.auto_fragment(false);  // a batch goes out as one frame, in one write
        ws_.async_accept(upgrade, [self = shared_from_this()](beast::error_code ec) { self->on_accept(ec); });
    }

    bool deliver(const Frame& frame) override {
        enqueue(frame);
        if (flush_pending_) return false;
        flush_pending_ = true;
        return true;
    }

    void flush() override {
        flush_pending_ = false;
        if (in_flight_.empty() && !queue_.empty() && !closing_) write();
    }

    void close(unsigned short code) override {
        if (closing_) return;
        closing_ = true;
        // The read loop may have stopped (error budget), so leaving the hub cannot wait for it.
        ws_.async_close(websocket::close_reason(code),
                        [self = shared_from_this()](beast::error_code) { self->leave(); });
    }

private:
    void on_accept(beast::error_code ec) {
        if (ec) return;
        hub_.join(loop_, shared_from_this());
        read();
    }

    void leave() {
        closing_ = true;
        hub_.leave(loop_, this);
    }

    void read() {
        ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    }

    void on_read(beast::error_code ec) {
        if (ec) {  // closed by the peer, timed out, or a protocol violation (Beast sent the close)
            leave();
            return;
        }
        metrics_.messages_received.inc();
        const std::string text = beast::buffers_to_string(buffer_.data());
        buffer_.consume(buffer_.size());
        if (Frame reply = within_rate() ? answer(text) : refuse_rate()) send(reply);  // store reads reply later
        if (errors_ >= options_.error_budget) {
            metrics_.budget_closes.inc();
            close(static_cast<unsigned short>(websocket::close_code::policy_error));
            return;
        }
        read();
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
            hub_.subscribe(loop_, this, parse.query->id, parse.query->canonical);
            queries_[parse.query->id] = parse.query->canonical;
            return query_reply("subscribed", parse.query->id, &parse.query->canonical);
        }
        if (*type == "unsubscribe") {
            const auto qid = message.find("qid");
            if (qid == message.end() || !qid->is_string())
                return error("bad_message", "unsubscribe needs a \"qid\" string");
            if (!queries_.erase(qid->get<std::string>()))
                return error("not_subscribed", "this connection holds no subscription " + qid->get<std::string>());
            hub_.unsubscribe(loop_, this, qid->get<std::string>());
            return query_reply("unsubscribed", qid->get<std::string>(), nullptr);
        }
        if (*type == "history" || *type == "resume" || *type == "get") return ask_store(*type, message);
        return error("unknown_type", "unknown message type \"" + type->get<std::string>() +
                                         "\" (expected subscribe, unsubscribe, history, resume or get)");
    }

    // Store reads answer asynchronously: the reply arrives through deliver().
    Frame ask_store(const std::string& type, const nlohmann::json& message) {
        if (!store_) return error("no_store", "this replica has no store configured");
        auto text_field = [&](const char* name) -> std::optional<std::string> {
            const auto it = message.find(name);
            if (it == message.end() || it->is_null()) return std::string();
            if (!it->is_string()) return std::nullopt;
            return it->get<std::string>();
        };
        // Called on a store reader thread: hop back onto this connection's loop.
        StoreReader::Reply reply = [self = shared_from_this()](std::string text) {
            net::post(self->ws_.get_executor(), [self, frame = std::make_shared<const std::string>(std::move(text))] {
                self->send(frame);
            });
        };
        bool queued = false;
        if (type == "get") {
            const auto id = text_field("id");
            if (!id || id->empty()) return error("bad_message", "get needs an \"id\" string");
            queued = store_->get(*id, std::move(reply));
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
                queued = store_->history(id, canonical, size, *position, std::move(reply));
            } else {
                queued = store_->resume(id, canonical, *position, hub_.latest_tweet_id(), std::move(reply));
            }
        }
        if (!queued) return error("busy", "too many store requests in flight, try again shortly");
        return nullptr;
    }

    Frame error(std::string_view code, std::string_view message, std::optional<std::size_t> position = {}) {
        metrics_.client_errors.inc();
        ++errors_;
        return error_reply(code, message, position);
    }

    // A token bucket per connection: a burst is fine, a flood is answered, not served.
    bool within_rate() {
        const auto now = std::chrono::steady_clock::now();
        tokens_ = std::min(options_.message_burst,
                           tokens_ + std::chrono::duration<double>(now - refilled_).count() * options_.messages_per_second);
        refilled_ = now;
        if (tokens_ < 1) return false;
        tokens_ -= 1;
        return true;
    }

    Frame refuse_rate() {
        metrics_.rate_limited.inc();
        return error("rate_limited", "more than " + std::to_string(static_cast<int>(options_.messages_per_second)) +
                                         " messages per second; slow down");
    }

    void enqueue(const Frame& frame) {
        if (closing_) return;
        // Bounded memory: drop the oldest frames not yet being written.
        bool over = false;
        while (!queue_.empty() && queued_bytes_ + frame->size() > options_.max_queue_bytes) {
            release(queue_.front()->size());
            queue_.pop_front();
            metrics_.frames_dropped.inc();
            over = true;
        }
        // Over the limit from the first drop until the queue drains below half of it. A client
        // that stays over for slow_close_after is not coming back: let it go.
        const auto now = std::chrono::steady_clock::now();
        if (over && !over_since_) over_since_ = now;
        if (over_since_ && queued_bytes_ < options_.max_queue_bytes / 2) over_since_.reset();
        if (over_since_ && now - *over_since_ >= options_.slow_close_after) {
            // It does not read, so a close frame (1013) would never reach it: drop the connection,
            // with a reset (linger 0) so the kernel does not keep its full send buffer either.
            metrics_.slow_closes.inc();
            closing_ = true;
            beast::error_code ignored;
            beast::get_lowest_layer(ws_).socket().set_option(net::socket_base::linger(true, 0), ignored);
            beast::get_lowest_layer(ws_).socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
            beast::get_lowest_layer(ws_).socket().close(ignored);
            return;
        }
        queue_.push_back(frame);
        queued_bytes_ += frame->size();
        metrics_.queued_bytes.add(static_cast<std::int64_t>(frame->size()));
    }

    void send(const Frame& frame) {
        enqueue(frame);
        if (!flush_pending_) flush();
    }

    // Everything queued (up to a batch) leaves as one message: the shared frames
    // themselves, joined by separators, with no copy.
    void write() {
        std::size_t bytes = 0;
        while (!queue_.empty() && in_flight_.size() < max_batch_messages &&
               (in_flight_.empty() || bytes + queue_.front()->size() < max_batch_bytes)) {
            if (!in_flight_.empty()) buffers_.emplace_back(&message_separator, 1);
            buffers_.emplace_back(queue_.front()->data(), queue_.front()->size());
            bytes += queue_.front()->size();
            in_flight_.push_back(std::move(queue_.front()));
            queue_.pop_front();
        }
        ws_.async_write(buffers_, [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_write(ec); });
    }

    void on_write(beast::error_code ec) {
        std::size_t bytes = 0;
        for (const auto& frame : in_flight_) bytes += frame->size();
        release(bytes);
        metrics_.frames_sent.inc(in_flight_.size());
        metrics_.bytes_sent.inc(bytes);
        in_flight_.clear();
        buffers_.clear();
        if (ec) {
            leave();
            return;
        }
        if (!queue_.empty() && !closing_) write();
    }

    void release(std::size_t bytes) {
        queued_bytes_ -= bytes;
        metrics_.queued_bytes.add(-static_cast<std::int64_t>(bytes));
    }

    websocket::stream<beast::tcp_stream> ws_;
    const std::size_t loop_;
    Hub& hub_;
    StoreReader* store_;
    const SessionOptions& options_;
    SessionMetrics& metrics_;
    beast::flat_buffer buffer_;
    std::deque<Frame> queue_;          // waiting to be written
    std::vector<Frame> in_flight_;     // being written, as one message
    std::vector<net::const_buffer> buffers_;
    std::size_t queued_bytes_ = 0;     // waiting and in flight
    bool closing_ = false;
    bool flush_pending_ = false;  // delivered to during a burst: the hub calls flush() at its end
    std::unordered_map<std::string, std::string> queries_;  // this connection's subscriptions: qid -> canonical
    std::size_t errors_ = 0;
    double tokens_ = 0;
    std::chrono::steady_clock::time_point refilled_ = std::chrono::steady_clock::now();
    std::optional<std::chrono::steady_clock::time_point> over_since_;
};

}  // namespace

void start_websocket_session(net::ip::tcp::socket socket, std::size_t loop,
                             beast::http::request<beast::http::string_body> upgrade, Hub& hub, StoreReader* store,
                             const SessionOptions& options, SessionMetrics& metrics) {
    std::make_shared<WebSocketSession>(std::move(socket), loop, hub, store, options, metrics)->run(std::move(upgrade));
}

}  // namespace birdwatch
