// birdwatch-ingest:
//   source (synthetic | replay | Jetstream | X) ──lines──▶ pipeline (parse, percolate) ──accepted tweets──▶ journal (append to the spool)
//      journal ──publications, once durable──▶ publisher ──▶ Redis
//      journal ──spooled batches──▶ store writer ──▶ store (SQLite | ElasticSearch), then spool commit
//   query follower (Redis registry) ──query updates──▶ pipeline
// Started in dependency order (consumers first), stopped from the source down so
// every belt drains before its consumer exits.

#include "common/admin_server.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/shutdown_signal.h"
#include "ingest/ingest_config.h"

#include <curl/curl.h>

#include <cstdlib>
#include <iostream>
#include <memory>

using namespace birdwatch;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<Source> make_source(const IngestConfig& config, BoundedChannel<StreamLine>& out,
                                    MetricsRegistry& metrics) {
    if (config.source_kind == "replay") return std::make_unique<ReplaySource>(config.replay, out);
    if (config.source_kind == "jetstream") return std::make_unique<JetstreamSource>(config.jetstream, out, metrics);
    if (config.source_kind == "x_v2" || config.source_kind == "x_v1")
        return std::make_unique<StreamSource>(config.stream, out, metrics);
    return std::make_unique<SyntheticSource>(config.synthetic, out);
}

struct CurlGlobal {  // libcurl's global state, set up before any thread uses it
    CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
    ~CurlGlobal() { curl_global_cleanup(); }
};

}  // namespace

int main(int argc, char** argv) {
    ShutdownSignal shutdown;
    CurlGlobal curl;
    IngestConfig config;
    try {
        const ConfigResult loaded = load_config(ingest_config_spec(), {argv + 1, argv + argc}, std::getenv);
        if (loaded.exit_now) return 0;
        config = to_ingest_config(loaded.values);
        init_logging("ingest", config.log_level);
    } catch (const std::exception& e) {
        std::cerr << "birdwatch-ingest: " << e.what() << "\n";
        return 2;
    }

    MetricsRegistry metrics;
    BoundedChannel<StreamLine> lines(config.queue_capacity);
    BoundedChannel<QueryUpdate> query_updates(config.queue_capacity);
    BoundedChannel<AcceptedTweet> accepted(config.queue_capacity);
    BoundedChannel<Publication> publications(config.queue_capacity);
    BoundedChannel<SpooledBatch> spooled(std::max<std::size_t>(2, config.queue_capacity / config.writer.batch_size));
    std::unique_ptr<Source> source;  // made first: a bad source is a config error, before any file is created

    try {
        source = make_source(config, lines, metrics);
    } catch (const ConfigError& e) {
        spdlog::error("msg={}", logfmt(e.what()));
        return 2;
    }
    std::unique_ptr<TweetStore> store;
    std::unique_ptr<Spool> spool;
    std::unique_ptr<StoreLedger> ledger;
    std::unique_ptr<StoreWriter> writer;
    if (config.store_kind != "none") {
        StoreWriterOptions writer_options = config.writer;
        try {
            spool = std::make_unique<Spool>(config.spool);
            if (config.store_kind == "sqlite") {
                auto sqlite = std::make_unique<SqliteStore>(config.sqlite);
                if (config.retention_max_age_ms > 0 || config.retention_max_rows > 0) {
                    writer_options.retention = [db = sqlite.get(), &config] {
                        StoreStatus status;
                        const std::int64_t cutoff =
                            config.retention_max_age_ms > 0 ? now_epoch_ms() - config.retention_max_age_ms : 0;
                        const auto deleted = db->enforce_retention(cutoff, config.retention_max_rows, status);
                        if (!status.ok()) spdlog::warn("msg=\"retention failed\" error={}", logfmt(status.message));
                        else if (deleted) spdlog::info("msg=\"retention\" deleted={}", deleted);
                    };
                }
                store = std::move(sqlite);
            } else {
                auto elastic = std::make_unique<ElasticStore>(config.elastic);
                // Not fatal: until ElasticSearch answers, tweets wait in the spool.
                if (const StoreStatus status = elastic->ensure_template(); !status.ok())
                    spdlog::warn("msg=\"could not ensure the index template yet\" error={}", logfmt(status.message));
                store = std::move(elastic);
            }
        } catch (const std::exception& e) {
            spdlog::error("msg=\"cannot open the store\" error={}", logfmt(e.what()));
            return 1;
        }
        ledger = std::make_unique<StoreLedger>(*spool, metrics);
        source->resume_after(spool->source_position());
        writer = std::make_unique<StoreWriter>(writer_options, spooled, *store, *spool, *ledger, metrics);
    }

    Publisher publisher(config.publisher, publications, metrics);
    Journal journal({config.writer.batch_size, config.writer.batch_max_bytes}, accepted, publications, ledger.get(),
                    writer ? &spooled : nullptr, metrics);
    Pipeline pipeline(config.pipeline, lines, query_updates, accepted, metrics);
    QueryFollower follower(config.follower, query_updates, metrics);

    AdminServer admin(config.http_address, static_cast<unsigned short>(std::max(0, config.http_port)),
                      {metrics, {}, {}, ""});
    if (config.http_port >= 0) {
        try {
            admin.start();
        } catch (const std::exception& e) {
            spdlog::error("msg=\"cannot listen for /healthz and /metrics\" address={} port={} error={}",
                          config.http_address, config.http_port, logfmt(e.what()));
            return 1;
        }
    }

    if (writer) writer->start();
    publisher.start();
    journal.start();
    pipeline.start();
    follower.start();
    if (!follower.wait_for_snapshot(config.initial_query_load))
        spdlog::warn("msg=\"query registry not loaded yet, starting the source anyway\" waited_ms={}",
                     config.initial_query_load.count());
    source->start(metrics);
    spdlog::info("msg=\"started\" source={} redis={}:{} channel={} http_port={}", config.source_kind,
                 config.publisher.redis.host, config.publisher.redis.port, config.pipeline.matches_channel,
                 config.http_port >= 0 ? admin.port() : -1);

    auto next_stats = std::chrono::steady_clock::now() + config.stats_interval;
    while (!source->finished()) {
        if (const int signal = shutdown.wait_for(200ms)) {
            spdlog::info("msg=\"shutting down, draining belts\" signal={}", signal);
            break;
        }
        if (config.stats_interval.count() > 0 && std::chrono::steady_clock::now() >= next_stats) {
            spdlog::info("msg=\"stats\" {}", metrics.summary());
            next_stats += config.stats_interval;
        }
    }
    source->stop();
    journal.stop();
    follower.stop();
    pipeline.join();
    journal.join();
    publisher.join();
    if (writer) writer->join();
    admin.stop();
    spdlog::info("msg=\"stopped\" {}", metrics.summary());
    if (const auto* stream = dynamic_cast<const StreamSource*>(source.get()); stream && !stream->fatal_error().empty())
        return exit_rejected_credentials;
    return 0;
}
