// jetstream-standin: a local stand-in for a Bluesky Jetstream v1 instance, for tests.
// Serves the lines of an events file as WebSocket text frames on GET /subscribe (any
// path), from the first event whose time_us is at or after the `cursor` query parameter
// (no cursor: from the start), paced at --rate events/s, then holds the connection open
// as a quiet live stream does. Written on raw sockets so it can misbehave on purpose:
//   --refuse              answer every upgrade with HTTP 503
//   --drop-after N        cut the first connection after N frames (with --cut-mid-frame:
//                         halfway through frame N+1), with a TCP reset
//   --refuse-after-drop   and answer every later upgrade with HTTP 503 (a dead instance)
//   --time-offset-us N    serve every time_us shifted by N (another instance's clock)
//   lines "#binary <x>"   sent as a binary frame
// Every request target is appended to --log, one "connect <target>" line each.
// --generate N [--seed S] [--write-events FILE] serves N generated posts (texts from
// ../shared/data/tweets when present, else the synthetic corpus; with likes, and one
// post about a zeppelin that a later post quotes) instead of --events, one per ms.

#include "bench/jetstream_events.h"
#include "bench/workload.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Options {
    int port = 0;
    std::string events_path, log_path;
    double rate = 0;
    long drop_after = -1;
    bool cut_mid_frame = false;
    bool refuse = false;
    long long time_offset_us = 0;
    bool refuse_after_drop = false;
    long generate = 0;
    unsigned long long seed = 1;
    std::string write_events;
};

struct Event {
    std::string text;
    long long time_us = -1;  // -1: none found (a hostile line)
    bool binary = false;
};

std::vector<Event> events;
Options options;
std::atomic<int> connections{0};
std::atomic<bool> dropped{false};
std::mutex log_mutex;

long long find_time_us(const std::string& line, std::size_t& digits_at, std::size_t& digits_end) {
    const std::size_t key = line.find("\"time_us\":");
    if (key == std::string::npos) return -1;
    digits_at = key + 10;
    long long value = -1;
    const auto [end, ec] = std::from_chars(line.data() + digits_at, line.data() + line.size(), value);
    if (ec != std::errc()) return -1;
    digits_end = static_cast<std::size_t>(end - line.data());
    return value;
}

std::vector<std::string> generated_lines() {
    std::string from;
    std::vector<std::string> texts;
    for (const auto& tweet : birdwatch::workload::load_tweets(BIRDWATCH_SHARED_DATA_DIR, 2000, from))
        texts.push_back(tweet.text);
    auto posts = birdwatch::workload::generated_posts(static_cast<std::size_t>(options.generate), options.seed, texts);
    if (posts.size() > 20) {
        posts[10].text = "The zeppelin drifted over the harbour at dawn";
        posts[10].quote_uri.clear();
        posts[posts.size() - 5].text = "Look at this one";
        posts[posts.size() - 5].quote_uri = birdwatch::workload::at_uri(posts[10].did, posts[10].rkey);
    }
    std::cerr << "jetstream-standin: generated " << posts.size() << " posts from " << from << "\n";
    return birdwatch::workload::jetstream_events(posts, 1783175888000000, 1000);
}

void load_events() {
    std::vector<std::string> lines;
    if (options.generate > 0) {
        lines = generated_lines();
    } else {
        std::ifstream in(options.events_path);
        if (!in) {
            std::cerr << "jetstream-standin: cannot read " << options.events_path << "\n";
            std::exit(2);
        }
        for (std::string line; std::getline(in, line);) lines.push_back(std::move(line));
    }
    if (!options.write_events.empty()) {
        std::ofstream out(options.write_events);
        for (const std::string& line : lines) out << line << '\n';
    }
    for (std::string& line : lines) {
        Event event;
        if (line.rfind("#binary ", 0) == 0) {
            event.binary = true;
            event.text = line.substr(8);
        } else {
            std::size_t at = 0, end = 0;
            event.time_us = find_time_us(line, at, end);
            if (event.time_us >= 0 && options.time_offset_us != 0) {
                event.time_us += options.time_offset_us;
                line.replace(at, end - at, std::to_string(event.time_us));
            }
            event.text = std::move(line);
        }
        events.push_back(std::move(event));
    }
}

bool write_all(int fd, const char* data, std::size_t size) {
    while (size > 0) {
        const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
        if (n <= 0) return false;
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

std::string frame(const Event& event) {
    std::string out;
    out.push_back(static_cast<char>(0x80 | (event.binary ? 0x2 : 0x1)));
    const std::size_t n = event.text.size();
    if (n < 126) {
        out.push_back(static_cast<char>(n));
    } else if (n < 65536) {
        out.push_back(126);
        out.push_back(static_cast<char>(n >> 8));
        out.push_back(static_cast<char>(n & 0xff));
    } else {
        out.push_back(127);
        for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((n >> shift) & 0xff));
    }
    return out + event.text;
}

std::string accept_key(const std::string& key) {
    const std::string joined = key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(joined.data()), joined.size(), digest);
    unsigned char encoded[64];
    const int n = EVP_EncodeBlock(encoded, digest, SHA_DIGEST_LENGTH);
    return std::string(reinterpret_cast<char*>(encoded), static_cast<std::size_t>(n));
}

std::string header(const std::string& request, const std::string& name) {
    std::size_t at = 0;
    while ((at = request.find("\r\n", at)) != std::string::npos) {
        at += 2;
        if (strncasecmp(request.c_str() + at, name.c_str(), name.size()) == 0 && request[at + name.size()] == ':') {
            std::size_t value = at + name.size() + 1;
            while (value < request.size() && request[value] == ' ') ++value;
            return request.substr(value, request.find("\r\n", value) - value);
        }
    }
    return {};
}

long long cursor_of(const std::string& target) {
    const std::size_t at = target.find("cursor=");
    if (at == std::string::npos || (at > 0 && target[at - 1] != '?' && target[at - 1] != '&')) return -1;
    long long value = -1;
    std::from_chars(target.data() + at + 7, target.data() + target.size(), value);
    return value;
}

void reset_and_close(int fd) {
    const linger hard{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    ::close(fd);
}

void serve(int fd) {
    const int number = connections++;
    std::string request;
    char buffer[4096];
    while (request.find("\r\n\r\n") == std::string::npos && request.size() < 16384) {
        const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0) return (void)::close(fd);
        request.append(buffer, static_cast<std::size_t>(n));
    }
    const std::size_t target_at = request.find(' ') + 1;
    const std::string target = request.substr(target_at, request.find(' ', target_at) - target_at);
    if (!options.log_path.empty()) {
        std::lock_guard lock(log_mutex);
        std::ofstream(options.log_path, std::ios::app) << "connect " << target << std::endl;
    }
    if (options.refuse || (options.refuse_after_drop && dropped)) {
        const std::string busy = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        write_all(fd, busy.data(), busy.size());
        return (void)::close(fd);
    }
    const std::string upgrade = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                "Sec-WebSocket-Accept: " + accept_key(header(request, "Sec-WebSocket-Key")) + "\r\n\r\n";
    if (!write_all(fd, upgrade.data(), upgrade.size())) return (void)::close(fd);

    const long long cursor = cursor_of(target);
    std::size_t from = 0;
    if (cursor > 0)
        while (from < events.size() && (events[from].time_us < 0 || events[from].time_us < cursor)) ++from;
    const auto interval = options.rate > 0 ? std::chrono::nanoseconds(static_cast<long long>(1e9 / options.rate))
                                           : std::chrono::nanoseconds(0);
    auto next = std::chrono::steady_clock::now();
    long sent = 0;
    for (std::size_t i = from; i < events.size(); ++i) {
        const std::string bytes = frame(events[i]);
        if (number == 0 && options.drop_after >= 0 && sent == options.drop_after) {
            if (options.cut_mid_frame) write_all(fd, bytes.data(), bytes.size() / 2);
            dropped = true;
            return reset_and_close(fd);
        }
        if (interval.count() > 0) {
            std::this_thread::sleep_until(next);
            next += interval;
        }
        if (!write_all(fd, bytes.data(), bytes.size())) return (void)::close(fd);
        ++sent;
    }
    while (::recv(fd, buffer, sizeof buffer, 0) > 0) {  // a quiet live stream, until the client leaves
    }
    ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const auto value = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
        if (arg == "--port") options.port = std::atoi(value().c_str());
        else if (arg == "--events") options.events_path = value();
        else if (arg == "--log") options.log_path = value();
        else if (arg == "--rate") options.rate = std::atof(value().c_str());
        else if (arg == "--drop-after") options.drop_after = std::atol(value().c_str());
        else if (arg == "--cut-mid-frame") options.cut_mid_frame = true;
        else if (arg == "--refuse") options.refuse = true;
        else if (arg == "--time-offset-us") options.time_offset_us = std::atoll(value().c_str());
        else if (arg == "--refuse-after-drop") options.refuse_after_drop = true;
        else if (arg == "--generate") options.generate = std::atol(value().c_str());
        else if (arg == "--seed") options.seed = std::strtoull(value().c_str(), nullptr, 10);
        else if (arg == "--write-events") options.write_events = value();
        else {
            std::cerr << "jetstream-standin: unknown argument " << arg << "\n";
            return 2;
        }
    }
    if (!options.events_path.empty() || options.generate > 0) load_events();
    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int yes = 1;
    ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<unsigned short>(options.port));
    if (::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || ::listen(listener, 64) != 0) {
        std::perror("jetstream-standin: listen");
        return 1;
    }
    socklen_t length = sizeof address;
    ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
    std::cout << "listening " << ntohs(address.sin_port) << " events " << events.size() << std::endl;
    while (true) {
        const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) continue;
        std::thread(serve, fd).detach();
    }
}
