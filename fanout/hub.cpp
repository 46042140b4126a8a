#include "fanout/hub.h"

namespace birdwatch {

Hub::Hub(MetricsRegistry& metrics)
    : broadcasts_(metrics.counter("birdwatch_fanout_payloads_total", "Payloads received for delivery")) {
    metrics.gauge_fn("birdwatch_fanout_connections", "Open WebSocket connections",
                     [this] { return static_cast<double>(size()); });
}

void Hub::join(const std::shared_ptr<Recipient>& recipient) {
    std::lock_guard lock(mutex_);
    recipients_.emplace(recipient.get(), recipient);
}

void Hub::leave(const Recipient* recipient) {
    std::lock_guard lock(mutex_);
    recipients_.erase(recipient);
}

std::vector<std::shared_ptr<Recipient>> Hub::snapshot() const {
    std::vector<std::shared_ptr<Recipient>> out;
    std::lock_guard lock(mutex_);
    out.reserve(recipients_.size());
    for (const auto& [key, weak] : recipients_)
        if (auto strong = weak.lock()) out.push_back(std::move(strong));
    return out;
}

void Hub::broadcast(std::string payload) {
    broadcasts_.inc();
    const Frame frame = std::make_shared<const std::string>(std::move(payload));
    for (const auto& recipient : snapshot()) recipient->deliver(frame);
}

void Hub::close_all(unsigned short code) {
    for (const auto& recipient : snapshot()) recipient->close(code);
}

std::size_t Hub::size() const {
    std::lock_guard lock(mutex_);
    return recipients_.size();
}

}  // namespace birdwatch
