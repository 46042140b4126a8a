#pragma once
// A WebSocket test client (Beast, async, on a shared I/O thread). It records every
// text message it receives so tests can assert on exact bytes and order.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace birdwatch::test {

class WsIo {
public:
    WsIo();
    ~WsIo();
    struct Impl;
    Impl& impl() { return *impl_; }

private:
    std::unique_ptr<Impl> impl_;
};

class WsClient {
public:
    explicit WsClient(WsIo& io);
    ~WsClient();
    WsClient(WsClient&&) noexcept;

    // Connects and completes the handshake; false (with error()) on failure or timeout.
    bool connect(unsigned short port, const std::string& target = "/ws",
                 std::chrono::milliseconds timeout = std::chrono::seconds(5), const std::string& origin = "");
    // Connects to `host` instead of 127.0.0.1 (test hosts in network namespaces).
    void set_host(const std::string& host);
    void send(const std::string& text);
    void close();
    // Stops reading after the message in hand (the server's queue for it fills up), or reads again.
    void pause_reading(bool paused);

    std::size_t message_count() const;
    std::vector<std::string> messages() const;
    // The messages from index `first` on: what a poll loop has not looked at yet.
    std::vector<std::string> messages_since(std::size_t first) const;
    // Hands over what was received so far and forgets it (long runs: bounded memory);
    // message_count() and messages() then count from there.
    std::vector<std::string> take_messages();
    bool wait_for_messages(std::size_t count, std::chrono::milliseconds timeout) const;
    bool is_open() const;
    std::optional<int> close_code() const;  // the server's close code, once closed
    std::string error() const;

    struct State;

private:
    std::shared_ptr<State> state_;
};

// A client that completes the handshake, subscribes to `query`, and then never reads
// again: the stalled browser tab a fanout must survive. Returns the socket (or -1).
int connect_and_stall(unsigned short port, const std::string& query);

}  // namespace birdwatch::test
