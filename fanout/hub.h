#pragma once
// The set of connected recipients, and the one place a payload is turned into a
// shared immutable frame: encoded once, referenced by every recipient's queue.

#include "common/metrics.h"

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace birdwatch {

using Frame = std::shared_ptr<const std::string>;

class Recipient {
public:
    virtual ~Recipient() = default;
    // Called from any thread; must not block.
    virtual void deliver(const Frame& frame) = 0;
    // Close with a WebSocket close code (1001 on shutdown); from any thread.
    virtual void close(unsigned short code) = 0;
};

class Hub {
public:
    explicit Hub(MetricsRegistry& metrics);

    void join(const std::shared_ptr<Recipient>& recipient);
    void leave(const Recipient* recipient);

    // Shares one immutable copy of `payload` with every recipient.
    void broadcast(std::string payload);
    void close_all(unsigned short code);
    std::size_t size() const;

private:
    std::vector<std::shared_ptr<Recipient>> snapshot() const;

    mutable std::mutex mutex_;
    std::unordered_map<const Recipient*, std::weak_ptr<Recipient>> recipients_;
    Counter& broadcasts_;
};

}  // namespace birdwatch
