#pragma once
// A scripted HTTP/1.1 server on a loopback port for testing HTTP clients (stream
// clients now, the ElasticSearch backend later). Each request to a path takes the
// next scripted response for that path; a response may stream its body in chunks
// (chunked transfer encoding, as X's streams do), stall silently, or cut the
// connection mid-body. Every request is recorded.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace birdwatch::test {

struct ScriptedResponse {
    int status = 200;
    std::string content_type = "application/json";
    std::vector<std::string> chunks;                 // the body, written chunk by chunk
    std::chrono::milliseconds chunk_delay{0};
    bool chunked = true;                             // else Content-Length and one write
    bool gzip = false;                               // Content-Encoding: gzip over the whole body
    bool cut = false;                                // close the socket after the chunks, without the final chunk
    std::chrono::milliseconds hold{0};               // after the chunks, stay silent this long before ending
};

struct RecordedRequest {
    std::string method, target, body;
    std::map<std::string, std::string> headers;  // lower-case names
    std::chrono::steady_clock::time_point at;     // when its headers had arrived
};

class ScriptServer {
public:
    ScriptServer();
    ~ScriptServer();

    unsigned short port() const { return port_; }
    std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }

    // Scripts the next response for requests whose path (target before '?') is `path`.
    void enqueue(const std::string& path, ScriptedResponse response);
    // Answers requests that have no scripted response (a stateful fake behind the script).
    using Handler = std::function<ScriptedResponse(const RecordedRequest&)>;
    void set_handler(Handler handler);
    std::vector<RecordedRequest> requests() const;
    bool wait_for_requests(std::size_t count, std::chrono::milliseconds timeout) const;

private:
    void serve();
    void handle(int fd);

    int listener_ = -1;
    unsigned short port_ = 0;
    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    std::map<std::string, std::deque<ScriptedResponse>> scripts_;
    Handler handler_;
    std::vector<RecordedRequest> requests_;
    bool stopping_ = false;
    std::vector<std::thread> connections_;
    std::thread acceptor_;
};

}  // namespace birdwatch::test
