// birdwatch-bench-wsload: thousands of WebSocket client connections from one
// process, on plain epoll so the load generator costs as little CPU as possible.
// Local addresses are spread over 127.0.0.2.. (IP_BIND_ADDRESS_NO_PORT), so more
// than 64k connections fit. Counts tweet messages and bytes in a measuring window
// and the latency from the payload's "ingest_us" stamp to arrival; reads another
// process's CPU time and RSS over the same window (--server-pid). Prints one line:
//   wsload connections=.. connected=.. failed=.. connect_s=.. window_s=.. messages=.. other=..
//          bytes=.. msgs_per_s=.. lat_p50_ms=.. lat_p99_ms=.. lat_max_ms=.. cpu_s=..
//          server_cpu_s=.. server_rss_kib=.. server_rss_start_kib=.. stalled=.. stalled_closed=..
// --stall K: the first K connections subscribe and then never read (a stalled
// browser tab); their messages are not counted, only whether the server drops them.
// Server frames may hold several '\n'-separated messages (birdwatch) or one (baseline).
// --deflate 1 offers permessage-deflate (each message compressed alone); --deflate W
// (9-14) asks for a server window of 2^W bytes, which birdwatch answers with a compressor
// per connection that keeps its context, so each connection inflates with its own
// stream. bytes= counts what came over the wire.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
    std::string host = "127.0.0.1";
    unsigned short port = 0;
    std::string path = "/ws";
    std::size_t connections = 100;
    std::size_t sources = 0;  // 0: one per 20,000 connections
    std::string subscribe;    // frames sent after the handshake (one per --subscribe); the first reply marks it ready
    double seconds = 5;
    double connect_timeout = 60;
    int threads = 1;
    int server_pid = 0;
    std::string ready_file;  // written when every connection is ready: the window starts
    std::size_t stall = 0;   // this many connections subscribe, then never read again
    int deflate = 0;         // offer permessage-deflate: 1 plain offer, 9-14 that server window; inflated to be counted
};

std::int64_t now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Exact to the microsecond up to 10 s; beyond that only the maximum is kept.
struct Latency {
    std::vector<std::uint32_t> counts = std::vector<std::uint32_t>(10'000'000);
    std::int64_t max_us = 0;
    std::uint64_t total = 0;
    void add(std::int64_t us) {
        us = std::max<std::int64_t>(us, 0);
        max_us = std::max(max_us, us);
        ++total;
        if (us < static_cast<std::int64_t>(counts.size())) ++counts[static_cast<std::size_t>(us)];
    }
    void merge(const Latency& other) {
        for (std::size_t i = 0; i < counts.size(); ++i) counts[i] += other.counts[i];
        max_us = std::max(max_us, other.max_us);
        total += other.total;
    }
    double quantile_ms(double q) const {
        if (total == 0) return 0;
        const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total - 1)) + 1;
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < counts.size(); ++i)
            if ((seen += counts[i]) >= rank) return static_cast<double>(i) / 1000.0;
        return static_cast<double>(max_us) / 1000.0;
    }
};

struct Connection {
    int fd = -1;
    enum class State { connecting, handshaking, subscribing, ready, closed } state = State::connecting;
    bool stalled = false;
    std::string in;  // bytes of an incomplete handshake or frame
    std::unique_ptr<z_stream> inflater;  // --deflate W: this connection's stream, context kept
};

std::string masked_frame(std::uint8_t opcode, std::string_view payload) {
    std::string frame;
    frame.push_back(static_cast<char>(0x80 | opcode));
    if (payload.size() < 126) {
        frame.push_back(static_cast<char>(0x80 | payload.size()));
    } else {
        frame.push_back(static_cast<char>(0x80 | 126));
        frame.push_back(static_cast<char>(payload.size() >> 8));
        frame.push_back(static_cast<char>(payload.size() & 0xff));
    }
    const char mask[4] = {0x12, 0x34, 0x56, 0x78};
    frame.append(mask, 4);
    for (std::size_t i = 0; i < payload.size(); ++i) frame.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
    return frame;
}

class Worker {
public:
    Worker(const Options& options, std::size_t first, std::size_t count, std::atomic<bool>& measuring,
           std::atomic<bool>& stop)
        : options_(options), first_(first), connections_(count), measuring_(measuring), stop_(stop) {
        epoll_ = epoll_create1(0);
        request_ = "GET " + options.path + " HTTP/1.1\r\nHost: " + options.host + ":" + std::to_string(options.port) +
                   "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n" +
                   std::string(options.deflate == 1 ? "Sec-WebSocket-Extensions: permessage-deflate\r\n" : "") +
                   (options.deflate > 1 ? "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=" +
                                              std::to_string(options.deflate) + "\r\n"
                                        : "") +
                   "\r\n";
        inflateInit2(&inflater_, -15);
        subscribe_ = options.subscribe;
    }
    ~Worker() {
        for (auto& c : connections_) {
            if (c.fd >= 0) close(c.fd);
            if (c.inflater) inflateEnd(c.inflater.get());
        }
        close(epoll_);
        inflateEnd(&inflater_);
    }

    std::atomic<std::size_t> ready{0}, failed{0}, stalled_closed{0};
    std::uint64_t messages = 0, other = 0, bytes = 0;
    Latency latency;

    void run() {
        std::vector<epoll_event> events(1024);
        std::vector<char> buffer(256 * 1024);
        std::size_t next = 0, in_flight = 0;
        bool counting = false;
        while (!stop_.load(std::memory_order_relaxed)) {
            // Open connections a few hundred at a time: the server's accept backlog is finite.
            while (next < connections_.size() && in_flight < 256)
                if (start_connect(next++)) ++in_flight;
            const int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), 50);
            if (!counting && measuring_.load(std::memory_order_relaxed)) {
                counting = true;  // the window starts: what came before does not count
                messages = other = bytes = 0;
            }
            for (int i = 0; i < n; ++i) {
                Connection& c = connections_[events[i].data.u64];
                if (c.stalled) {  // never read; only told when the server drops it
                    ++stalled_closed;
                    epoll_ctl(epoll_, EPOLL_CTL_DEL, c.fd, nullptr);
                    continue;
                }
                const auto before = c.state;
                if (c.state == Connection::State::connecting) on_connected(c, events[i].events);
                else on_readable(c, buffer, counting);
                if (before < Connection::State::ready && c.state >= Connection::State::ready) --in_flight;
            }
        }
    }

private:
    bool start_connect(std::size_t index) {
        Connection& c = connections_[index];
        c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        const int one = 1;
        setsockopt(c.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (first_ + index < options_.stall) {  // a small window: the server's queue for it fills in seconds
            const int small = 16 * 1024;
            setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        }
        const std::size_t sources = options_.sources ? options_.sources : options_.connections / 20000 + 1;
        sockaddr_in local{};
        local.sin_family = AF_INET;
        local.sin_addr.s_addr = htonl((127U << 24) | (2 + static_cast<std::uint32_t>((first_ + index) % sources)));
        sockaddr_in remote{};
        remote.sin_family = AF_INET;
        remote.sin_port = htons(options_.port);
        inet_pton(AF_INET, options_.host.c_str(), &remote.sin_addr);
        if (bind(c.fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
            (connect(c.fd, reinterpret_cast<sockaddr*>(&remote), sizeof remote) != 0 && errno != EINPROGRESS)) {
            fail(c);
            return false;
        }
        epoll_event ev{};
        ev.events = EPOLLOUT | EPOLLIN;
        ev.data.u64 = index;
        epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &ev);
        return true;
    }

    void fail(Connection& c) {
        if (c.state < Connection::State::ready) ++failed;
        else ready.fetch_sub(1);
        if (c.fd >= 0) close(c.fd);
        c.fd = -1;
        c.state = Connection::State::closed;
        std::string().swap(c.in);
    }

    void send_all(Connection& c, std::string_view bytes) {
        // Tiny writes to a fresh socket: they fit in its buffer.
        if (write(c.fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) fail(c);
    }

    void on_connected(Connection& c, std::uint32_t events) {
        int error = 0;
        socklen_t len = sizeof error;
        getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &error, &len);
        if (error || (events & (EPOLLERR | EPOLLHUP))) return fail(c);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = static_cast<std::uint64_t>(&c - connections_.data());
        epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev);
        c.state = Connection::State::handshaking;
        send_all(c, request_);
    }

    // Reads into `buffer` behind what is left of the last read (less than one frame, kept
    // in c.in), so a read costs one copy of that remainder, not of everything read.
    void on_readable(Connection& c, std::vector<char>& buffer, bool counting) {
        while (c.state != Connection::State::closed) {
            const std::size_t kept = c.in.size();
            if (kept >= buffer.size() / 2) buffer.resize(kept * 2 + 64 * 1024);  // a frame bigger than the buffer
            std::memcpy(buffer.data(), c.in.data(), kept);
            const ssize_t n = read(c.fd, buffer.data() + kept, buffer.size() - kept);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return fail(c);
            if (n < 0) return;
            if (counting) bytes += static_cast<std::uint64_t>(n);
            const std::string_view data(buffer.data(), kept + static_cast<std::size_t>(n));
            arrived_us_ = now_us();
            const std::size_t used = consume(c, data, counting);
            if (c.state == Connection::State::closed || c.stalled) return;
            c.in.assign(data.substr(used));
            if (static_cast<std::size_t>(n) < buffer.size() - kept) return;
        }
    }

    // Parses what it can of `data`; returns the bytes used.
    std::size_t consume(Connection& c, std::string_view data, bool counting) {
        std::size_t at = 0;
        if (c.state == Connection::State::handshaking) {
            const std::size_t end = data.find("\r\n\r\n");
            if (end == std::string_view::npos) return 0;
            if (data.substr(0, 12) != "HTTP/1.1 101") {
                fail(c);
                return 0;
            }
            at = end + 4;
            if (subscribe_.empty()) {
                c.state = Connection::State::ready;
                ++ready;
            } else {
                c.state = Connection::State::subscribing;
                send_all(c, subscribe_);
                if (c.state == Connection::State::closed) return 0;
            }
        }
        while (data.size() - at >= 2) {
            const auto b0 = static_cast<std::uint8_t>(data[at]), b1 = static_cast<std::uint8_t>(data[at + 1]);
            std::size_t header = 2;
            std::uint64_t length = b1 & 0x7f;
            if (length == 126) {
                if (data.size() - at < 4) break;
                length = (static_cast<std::uint64_t>(static_cast<std::uint8_t>(data[at + 2])) << 8) |
                         static_cast<std::uint8_t>(data[at + 3]);
                header = 4;
            } else if (length == 127) {
                if (data.size() - at < 10) break;
                length = 0;
                for (int i = 0; i < 8; ++i) length = (length << 8) | static_cast<std::uint8_t>(data[at + 2 + i]);
                header = 10;
            }
            if (data.size() - at < header + length) break;
            const std::string_view payload = data.substr(at + header, length);
            at += header + length;
            const int opcode = b0 & 0x0f;
            if (opcode == 0x8) {
                fail(c);
                return at;
            }
            if (opcode == 0x9) {
                send_all(c, masked_frame(0xA, payload));
                continue;
            }
            if (opcode > 0x2) continue;
            std::string_view text = payload;
            if (b0 & 0x40) {  // RSV1: permessage-deflate
                if (!inflate(c, payload)) {
                    fail(c);
                    return at;
                }
                text = inflated_;
            }
            if (c.state == Connection::State::subscribing) {
                c.state = Connection::State::ready;
                ++ready;
                if (first_ + static_cast<std::size_t>(&c - connections_.data()) < options_.stall) {
                    c.stalled = true;
                    epoll_event ev{};
                    ev.events = EPOLLRDHUP;
                    ev.data.u64 = static_cast<std::uint64_t>(&c - connections_.data());
                    epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev);
                    return at;
                }
            }
            if (counting) count(text);
        }
        return at;
    }

    // A compressed message into inflated_: alone (the worker's stream, reset), or with the
    // context of the connection's earlier messages (its own stream).
    bool inflate(Connection& c, std::string_view compressed) {
        z_stream* stream = &inflater_;
        if (options_.deflate > 1) {
            if (!c.inflater) {
                c.inflater = std::make_unique<z_stream>();
                inflateInit2(c.inflater.get(), -options_.deflate);
            }
            stream = c.inflater.get();
        } else {
            inflateReset(stream);
        }
        deflated_.assign(compressed);
        for (const char c : {'\0', '\0', '\xff', '\xff'}) deflated_.push_back(c);  // RFC 7692 7.2.2
        inflated_.resize(std::max<std::size_t>(inflated_.size(), compressed.size() * 8 + 4096));
        stream->next_in = reinterpret_cast<Bytef*>(deflated_.data());
        stream->avail_in = static_cast<uInt>(deflated_.size());
        std::size_t out = 0;
        while (true) {
            stream->next_out = reinterpret_cast<Bytef*>(inflated_.data() + out);
            stream->avail_out = static_cast<uInt>(inflated_.size() - out);
            const int status = ::inflate(stream, Z_SYNC_FLUSH);
            out = inflated_.size() - stream->avail_out;
            if (status != Z_OK && status != Z_BUF_ERROR && status != Z_STREAM_END) return false;
            if (stream->avail_in == 0 && stream->avail_out != 0) break;
            if (stream->avail_out == 0) inflated_.resize(inflated_.size() * 2);
            else if (status == Z_BUF_ERROR) return false;
        }
        inflated_.resize(out);
        return true;
    }

    void count(std::string_view payload) {
        const std::int64_t arrived = arrived_us_;
        std::size_t start = 0;
        while (start < payload.size()) {
            std::size_t end = payload.find('\n', start);
            if (end == std::string_view::npos) end = payload.size();
            const std::string_view message = payload.substr(start, end - start);
            const std::size_t stamp = message.substr(0, 200).find("\"ingest_us\":");
            if (stamp == std::string_view::npos) {
                ++other;
            } else {
                ++messages;
                latency.add(arrived - std::strtoll(message.data() + stamp + 12, nullptr, 10));
            }
            start = end + 1;
        }
    }

    const Options& options_;
    const std::size_t first_;
    std::vector<Connection> connections_;
    std::atomic<bool>& measuring_;
    std::atomic<bool>& stop_;
    int epoll_;
    std::string request_, subscribe_;
    std::int64_t arrived_us_ = 0;  // when the bytes being parsed were read
    z_stream inflater_{};
    std::string deflated_, inflated_;
};

struct ProcessSample {
    double cpu_s = 0;
    long rss_kib = 0;
};

ProcessSample sample(int pid) {
    ProcessSample s;
    if (pid <= 0) return s;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), {});
    const auto close_paren = text.rfind(')');
    if (close_paren == std::string::npos) return s;
    std::vector<std::string> fields;
    std::size_t at = close_paren + 2;
    while (at < text.size()) {
        const auto space = text.find(' ', at);
        fields.push_back(text.substr(at, space - at));
        if (space == std::string::npos) break;
        at = space + 1;
    }
    // fields[0] is field 3 (state): utime and stime are fields 14 and 15, rss (pages) field 24.
    if (fields.size() > 22) {
        const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
        s.cpu_s = (std::stod(fields[11]) + std::stod(fields[12])) / ticks;
        s.rss_kib = std::stol(fields[21]) * (sysconf(_SC_PAGESIZE) / 1024);
    }
    return s;
}

double own_cpu_s() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
           static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string flag = argv[i], value = argv[i + 1];
        if (flag == "--host") o.host = value;
        else if (flag == "--port") o.port = static_cast<unsigned short>(std::stoi(value));
        else if (flag == "--path") o.path = value;
        else if (flag == "--connections") o.connections = std::stoul(value);
        else if (flag == "--sources") o.sources = std::stoul(value);
        else if (flag == "--subscribe") o.subscribe += masked_frame(0x1, value);  // several: each its own message
        else if (flag == "--seconds") o.seconds = std::stod(value);
        else if (flag == "--connect-timeout") o.connect_timeout = std::stod(value);
        else if (flag == "--threads") o.threads = std::max(1, std::stoi(value));
        else if (flag == "--server-pid") o.server_pid = std::stoi(value);
        else if (flag == "--ready-file") o.ready_file = value;
        else if (flag == "--stall") o.stall = std::stoul(value);
        else if (flag == "--deflate") o.deflate = std::stoi(value);
        else {
            std::cerr << "unknown flag " << flag << "\n";
            return 2;
        }
    }
    if (o.port == 0) {
        std::cerr << "usage: birdwatch-bench-wsload --port P [--connections N] [--subscribe JSON]... [--seconds S]\n"
                     "       [--threads T] [--sources K] [--server-pid PID] [--ready-file PATH] [--stall K] [--host H]\n"
                     "       [--path P] [--deflate 1|9..14]\n";
        return 2;
    }
    rlimit files{};
    getrlimit(RLIMIT_NOFILE, &files);
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);

    std::atomic<bool> measuring{false}, stop{false};
    std::vector<std::unique_ptr<Worker>> workers;
    std::size_t first = 0;
    for (int t = 0; t < o.threads; ++t) {
        const std::size_t count = o.connections / o.threads + (static_cast<std::size_t>(t) < o.connections % o.threads);
        workers.push_back(std::make_unique<Worker>(o, first, count, measuring, stop));
        first += count;
    }
    std::vector<std::thread> threads;
    const auto started = Clock::now();
    for (auto& w : workers) threads.emplace_back([&w] { w->run(); });

    auto tally = [&](auto field) {
        std::size_t sum = 0;
        for (auto& w : workers) sum += ((*w).*field).load();
        return sum;
    };
    while (tally(&Worker::ready) + tally(&Worker::failed) < o.connections &&
           Clock::now() - started < std::chrono::duration<double>(o.connect_timeout))
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const double connect_s = std::chrono::duration<double>(Clock::now() - started).count();
    const std::size_t connected = tally(&Worker::ready);

    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // replies to the subscribes settle
    const ProcessSample server_start = sample(o.server_pid);
    const double cpu_start = own_cpu_s();
    measuring = true;
    if (!o.ready_file.empty()) std::ofstream(o.ready_file) << "ready\n";
    const auto window_start = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
    stop = true;
    for (auto& t : threads) t.join();
    const double window = std::chrono::duration<double>(Clock::now() - window_start).count();
    const ProcessSample server_end = sample(o.server_pid);
    const double cpu = own_cpu_s() - cpu_start;

    std::uint64_t messages = 0, other = 0, bytes = 0;
    Latency latency;
    for (auto& w : workers) {
        messages += w->messages;
        other += w->other;
        bytes += w->bytes;
        latency.merge(w->latency);
    }
    std::printf(
        "wsload connections=%zu connected=%zu failed=%zu connect_s=%.2f window_s=%.2f messages=%llu other=%llu "
        "bytes=%llu msgs_per_s=%.0f lat_p50_ms=%.2f lat_p99_ms=%.2f lat_max_ms=%.2f cpu_s=%.2f server_cpu_s=%.2f "
        "server_rss_kib=%ld server_rss_start_kib=%ld stalled=%zu stalled_closed=%zu\n",
        o.connections, connected, tally(&Worker::failed), connect_s, window, static_cast<unsigned long long>(messages),
        static_cast<unsigned long long>(other), static_cast<unsigned long long>(bytes),
        static_cast<double>(messages) / window, latency.quantile_ms(0.5), latency.quantile_ms(0.99),
        static_cast<double>(latency.max_us) / 1000.0, cpu, server_end.cpu_s - server_start.cpu_s, server_end.rss_kib,
        server_start.rss_kib, o.stall, tally(&Worker::stalled_closed));
    return connected == o.connections ? 0 : 1;
}
