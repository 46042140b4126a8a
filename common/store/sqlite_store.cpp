#include "common/store/sqlite_store.h"

#include "common/query/program.h"
#include "common/query/tokens.h"
#include "common/tweet_parser.h"

#include <sqlite3.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <stdexcept>

namespace birdwatch {

namespace {

using Kind = QueryNode::Kind;

struct StatementDeleter {
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Statement = std::unique_ptr<sqlite3_stmt, StatementDeleter>;

Statement prepare(sqlite3* db, const char* sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK)
        throw std::runtime_error(std::string("sqlite: cannot prepare \"") + sql + "\": " + sqlite3_errmsg(db));
    return Statement(s);
}

// Resets a statement for reuse when it goes out of scope.
struct Use {
    sqlite3_stmt* s;
    explicit Use(const Statement& statement) : s(statement.get()) {}
    ~Use() {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
};

bool parse_id(const std::string& text, std::int64_t& id) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    return ec == std::errc{} && end == text.data() + text.size() && id > 0;
}

// FTS5's tokenizer would split or drop some of our tokens (an emoji, a '_', a spacing
// mark), so each token goes in as one FTS term: as it is when it is ASCII letters and
// digits, else spelled in hex. Index and queries spell alike; FTS only picks
// candidates, the query's own rules decide.
void append_fts_term(std::string& out, std::string_view token) {
    const bool plain = std::all_of(token.begin(), token.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
    });
    if (plain) {
        out += token;
        return;
    }
    static constexpr char hex[] = "0123456789abcdef";
    out += 'x';
    for (const char c : token) {
        out += hex[static_cast<unsigned char>(c) >> 4];
        out += hex[static_cast<unsigned char>(c) & 0xF];
    }
}

void append_phrase(std::string& out, const std::vector<std::string>& tokens) {
    out += '"';
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        if (i) out += ' ';
        append_fts_term(out, tokens[i]);
    }
    out += '"';
}

void append_meta(std::string& out, char marker, const std::string& value) {
    if (!out.empty()) out += ' ';
    out += marker;
    out += ' ';
    append_fts_term(out, value);
}

// Our tokens and marked meta terms, as the expressions built from queries spell them.
std::pair<std::string, std::string> fts_columns(const Tweet& t) {
    std::vector<std::string> tokens;
    for_each_searchable_text(t, [&](const std::string& text) { tokenize(text, tokens); });
    std::string terms;
    for (const auto& token : tokens) {
        if (!terms.empty()) terms += ' ';
        append_fts_term(terms, token);
    }
    std::string meta;
    for (const auto& tag : searchable_hashtags(t)) append_meta(meta, 'h', fold_case(tag));
    for (const auto& user : searchable_mentions(t)) append_meta(meta, 'm', fold_case(user));
    append_meta(meta, 'f', fold_case(t.user.screen_name));
    if (!t.in_reply_to_user.empty()) append_meta(meta, 't', fold_case(t.in_reply_to_user));
    return {std::move(terms), std::move(meta)};
}

bool anchored(const QueryNode& n) {
    switch (n.kind) {
        case Kind::word: case Kind::phrase: case Kind::hashtag: case Kind::mention: case Kind::from: case Kind::to:
            return true;
        case Kind::all_of:
            for (const auto& c : n.children) if (anchored(c)) return true;
            return false;
        case Kind::any_of:
            for (const auto& c : n.children) if (!anchored(c)) return false;
            return true;
        default: return false;
    }
}

}  // namespace

std::string fts_expression(const QueryNode& q) {
    std::string out;
    switch (q.kind) {
        case Kind::word:
        case Kind::phrase:
            out = "(terms : ";
            append_phrase(out, q.tokens);
            return out + ")";
        case Kind::hashtag: case Kind::mention: case Kind::from: case Kind::to: {
            const char marker = q.kind == Kind::hashtag ? 'h' : q.kind == Kind::mention ? 'm' : q.kind == Kind::from ? 'f' : 't';
            out = "(meta : \"";
            out += marker;
            out += ' ';
            append_fts_term(out, q.tokens[0]);
            return out + "\")";
        }
        case Kind::all_of:
        case Kind::any_of: {
            const char* join = q.kind == Kind::all_of ? " AND " : " OR ";
            for (const auto& child : q.children) {
                if (!anchored(child)) continue;  // negations and filters are left to the final check
                if (!out.empty()) out += join;
                out += fts_expression(child);
            }
            return "(" + out + ")";
        }
        default: return {};
    }
}

struct SqliteStore::Statements {
    Statement insert_tweet, insert_terms, delete_tweet, delete_terms, get, count, newest_first, oldest_first;
};

SqliteStore::SqliteStore(const SqliteOptions& options) {
    const int flags = options.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    if (sqlite3_open_v2(options.path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
        const std::string error = db_ ? sqlite3_errmsg(db_) : "out of memory";
        sqlite3_close(db_);
        throw std::runtime_error("sqlite: cannot open " + options.path + ": " + error);
    }
    sqlite3_busy_timeout(db_, static_cast<int>(options.busy_timeout.count()));
    if (!options.read_only) {
        const char* schema =
            "PRAGMA journal_mode=WAL;"
            "PRAGMA synchronous=NORMAL;"
            "CREATE TABLE IF NOT EXISTS tweets(id INTEGER PRIMARY KEY, created_at_ms INTEGER NOT NULL, json TEXT NOT NULL);"
            "CREATE INDEX IF NOT EXISTS tweets_by_time ON tweets(created_at_ms);"
            "CREATE VIRTUAL TABLE IF NOT EXISTS tweets_fts USING fts5(terms, meta, "
            "  tokenize = 'unicode61 remove_diacritics 0');";
        char* error = nullptr;
        if (sqlite3_exec(db_, schema, nullptr, nullptr, &error) != SQLITE_OK) {
            const std::string message = error ? error : "unknown error";
            sqlite3_free(error);
            sqlite3_close(db_);
            throw std::runtime_error("sqlite: cannot create the schema in " + options.path + ": " + message);
        }
    }
    statements_ = std::make_unique<Statements>();
    if (!options.read_only) {
        statements_->insert_tweet = prepare(db_, "INSERT OR IGNORE INTO tweets(id, created_at_ms, json) VALUES(?, ?, ?)");
        statements_->insert_terms = prepare(db_, "INSERT INTO tweets_fts(rowid, terms, meta) VALUES(?, ?, ?)");
        statements_->delete_tweet = prepare(db_, "DELETE FROM tweets WHERE id = ?");
        statements_->delete_terms = prepare(db_, "DELETE FROM tweets_fts WHERE rowid = ?");
    }
    if (!options.read_only) reindex_if_old();
    statements_->get = prepare(db_, "SELECT json FROM tweets WHERE id = ?");
    statements_->count = prepare(db_, "SELECT count(*) FROM tweets");
    statements_->newest_first = prepare(db_,
                                        "SELECT t.id, t.json FROM tweets_fts JOIN tweets t ON t.id = tweets_fts.rowid "
                                        "WHERE tweets_fts MATCH ? AND tweets_fts.rowid > ? AND tweets_fts.rowid < ? "
                                        "ORDER BY tweets_fts.rowid DESC LIMIT ?");
    statements_->oldest_first = prepare(db_,
                                        "SELECT t.id, t.json FROM tweets_fts JOIN tweets t ON t.id = tweets_fts.rowid "
                                        "WHERE tweets_fts MATCH ? AND tweets_fts.rowid > ? AND tweets_fts.rowid < ? "
                                        "ORDER BY tweets_fts.rowid ASC LIMIT ?");
}

// The search index's spelling (PRAGMA user_version): 2 indexes quoted posts, emoji and
// hex-spelled terms. A file written by an older version is re-indexed from its stored
// tweets when the ingest opens it.
constexpr int index_version = 2;

void SqliteStore::reindex_if_old() {
    Statement version = prepare(db_, "PRAGMA user_version");
    if (sqlite3_step(version.get()) != SQLITE_ROW || sqlite3_column_int(version.get(), 0) >= index_version) return;
    version.reset();
    if (sqlite3_exec(db_, "BEGIN IMMEDIATE; DELETE FROM tweets_fts;", nullptr, nullptr, nullptr) != SQLITE_OK)
        throw std::runtime_error(std::string("sqlite: cannot re-index: ") + sqlite3_errmsg(db_));
    Statement rows = prepare(db_, "SELECT id, json FROM tweets");
    TweetParser parser;
    std::vector<Tweet> parsed;
    while (sqlite3_step(rows.get()) == SQLITE_ROW) {
        parsed.clear();
        const std::string_view json(reinterpret_cast<const char*>(sqlite3_column_text(rows.get(), 1)),
                                    static_cast<std::size_t>(sqlite3_column_bytes(rows.get(), 1)));
        if (parser.parse(json, parsed).kind != ParseOutcome::Kind::tweets || parsed.size() != 1) continue;
        const auto [terms, meta] = fts_columns(parsed[0]);
        Use use(statements_->insert_terms);
        sqlite3_bind_int64(use.s, 1, sqlite3_column_int64(rows.get(), 0));
        sqlite3_bind_text(use.s, 2, terms.data(), static_cast<int>(terms.size()), SQLITE_STATIC);
        sqlite3_bind_text(use.s, 3, meta.data(), static_cast<int>(meta.size()), SQLITE_STATIC);
        sqlite3_step(use.s);
    }
    rows.reset();
    const std::string done = "PRAGMA user_version = " + std::to_string(index_version) + "; COMMIT;";
    if (sqlite3_exec(db_, done.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK)
        throw std::runtime_error(std::string("sqlite: cannot re-index: ") + sqlite3_errmsg(db_));
}

int SqliteStore::remove(std::int64_t id) {
    {
        Use use(statements_->delete_tweet);
        sqlite3_bind_int64(use.s, 1, id);
        if (sqlite3_step(use.s) != SQLITE_DONE) return -1;
    }
    if (sqlite3_changes(db_) == 0) return 0;
    Use use(statements_->delete_terms);
    sqlite3_bind_int64(use.s, 1, id);
    return sqlite3_step(use.s) == SQLITE_DONE ? 1 : -1;
}

SqliteStore::~SqliteStore() {
    statements_.reset();
    sqlite3_close(db_);
}

StoreStatus SqliteStore::failure(const char* what) {
    return StoreStatus::unavailable(std::string(what) + ": " + sqlite3_errmsg(db_));
}

StoreStatus SqliteStore::write(std::span<const StoredTweet> batch) {
    if (!statements_->insert_tweet) return StoreStatus::rejected("the store was opened read-only");
    if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) return failure("begin");
    StoreStatus result;
    for (const StoredTweet& s : batch) {
        std::int64_t id = 0;
        if (!parse_id(s.tweet.id, id)) {  // X ids are always decimal; anything else cannot be paged
            if (!s.deletion) result.rejections.push_back(s.tweet.id + ": not a positive 64-bit decimal id");
            continue;
        }
        if (s.deletion) {
            const int removed = remove(id);
            if (removed < 0) {
                StoreStatus status = failure("delete");
                sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
                return status;
            }
            result.deleted += static_cast<std::size_t>(removed);
            continue;
        }
        int rc;
        {
            Use use(statements_->insert_tweet);
            sqlite3_bind_int64(use.s, 1, id);
            sqlite3_bind_int64(use.s, 2, s.tweet.created_at_ms);
            sqlite3_bind_text(use.s, 3, s.json.data(), static_cast<int>(s.json.size()), SQLITE_STATIC);
            rc = sqlite3_step(use.s);
        }
        if (rc != SQLITE_DONE) {
            StoreStatus status = failure("insert");
            sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
            return status;
        }
        if (sqlite3_changes(db_) == 0) {  // stored before: idempotent
            ++result.duplicates;
            continue;
        }
        const auto [terms, meta] = fts_columns(s.tweet);
        Use use(statements_->insert_terms);
        sqlite3_bind_int64(use.s, 1, id);
        sqlite3_bind_text(use.s, 2, terms.data(), static_cast<int>(terms.size()), SQLITE_STATIC);
        sqlite3_bind_text(use.s, 3, meta.data(), static_cast<int>(meta.size()), SQLITE_STATIC);
        if (sqlite3_step(use.s) != SQLITE_DONE) {
            StoreStatus status = failure("index");
            sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
            return status;
        }
    }
    if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
        StoreStatus status = failure("commit");
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        return status;
    }
    return result;
}

std::optional<std::string> SqliteStore::get(const std::string& id, StoreStatus& status) {
    status = {};
    std::int64_t key = 0;
    if (!parse_id(id, key)) return std::nullopt;
    Use use(statements_->get);
    sqlite3_bind_int64(use.s, 1, key);
    const int rc = sqlite3_step(use.s);
    if (rc == SQLITE_ROW)
        return std::string(reinterpret_cast<const char*>(sqlite3_column_text(use.s, 0)),
                           static_cast<std::size_t>(sqlite3_column_bytes(use.s, 0)));
    if (rc != SQLITE_DONE) status = failure("get");
    return std::nullopt;
}

std::uint64_t SqliteStore::count(StoreStatus& status) {
    status = {};
    Use use(statements_->count);
    if (sqlite3_step(use.s) != SQLITE_ROW) {
        status = failure("count");
        return 0;
    }
    return static_cast<std::uint64_t>(sqlite3_column_int64(use.s, 0));
}

HistoryPage SqliteStore::history(const ParsedQuery& query, const PageRequest& request, StoreStatus& status) {
    status = {};
    HistoryPage page;
    const bool newest_first = request.order == PageRequest::Order::newest_first;
    constexpr auto max_id = static_cast<std::uint64_t>(INT64_MAX);
    // The bounds; the cursor (the last id looked at, matched or not) moves one of them.
    std::int64_t lower = static_cast<std::int64_t>(std::min(request.after, max_id));
    std::int64_t upper = static_cast<std::int64_t>(request.before == 0 ? max_id : std::min(request.before, max_id));
    std::int64_t& cursor = newest_first ? upper : lower;
    const std::string match = fts_expression(query.root);
    const std::vector<Instruction> program = compile(query.root);
    const Statement& statement = newest_first ? statements_->newest_first : statements_->oldest_first;
    TweetParser parser;
    std::vector<Tweet> tweets;
    TweetFeatures features;
    const std::size_t batch = std::max<std::size_t>(64, request.size * 4);  // each query is capped by the budget left
    std::size_t looked_at = 0;
    while (page.tweets.size() < request.size) {
        if (looked_at >= request.max_candidates) {
            page.next = static_cast<std::uint64_t>(cursor);  // out of budget: say where to go on
            return page;
        }
        std::size_t candidates = 0;
        const std::size_t limit = std::min(batch, request.max_candidates - looked_at);
        Use use(statement);
        sqlite3_bind_text(use.s, 1, match.data(), static_cast<int>(match.size()), SQLITE_STATIC);
        sqlite3_bind_int64(use.s, 2, lower);
        sqlite3_bind_int64(use.s, 3, upper);
        sqlite3_bind_int64(use.s, 4, static_cast<std::int64_t>(limit));
        int rc;
        while ((rc = sqlite3_step(use.s)) == SQLITE_ROW) {
            ++candidates;
            ++looked_at;
            cursor = sqlite3_column_int64(use.s, 0);
            const std::string_view json(reinterpret_cast<const char*>(sqlite3_column_text(use.s, 1)),
                                        static_cast<std::size_t>(sqlite3_column_bytes(use.s, 1)));
            tweets.clear();
            if (parser.parse(json, tweets).kind != ParseOutcome::Kind::tweets || tweets.empty()) {
                ++page.skipped;
                continue;
            }
            extract_features(tweets[0], features);
            if (!run(program.data(), features)) continue;
            page.tweets.emplace_back(json);
            if (page.tweets.size() == request.size) break;
        }
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            status = failure("history");
            return page;
        }
        if (page.tweets.size() == request.size) {
            page.next = static_cast<std::uint64_t>(cursor);
            break;
        }
        if (candidates < limit) break;  // no more candidates
    }
    return page;
}

std::uint64_t SqliteStore::enforce_retention(std::int64_t min_created_ms, std::uint64_t max_rows, StoreStatus& status) {
    status = {};
    if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
        status = failure("begin");
        return 0;
    }
    std::uint64_t deleted = 0;
    auto run_sql = [&](const std::string& sql) {
        if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) return false;
        deleted += static_cast<std::uint64_t>(sqlite3_changes(db_));
        return true;
    };
    const std::string by_age = "created_at_ms < " + std::to_string(min_created_ms);
    const std::string by_rows =
        "id <= (SELECT id FROM tweets ORDER BY id DESC LIMIT 1 OFFSET " + std::to_string(max_rows) + ")";
    bool ok = true;
    for (const auto& condition : {min_created_ms > 0 ? by_age : std::string(), max_rows > 0 ? by_rows : std::string()}) {
        if (condition.empty() || !ok) continue;
        ok = sqlite3_exec(db_, ("DELETE FROM tweets_fts WHERE rowid IN (SELECT id FROM tweets WHERE " + condition + ")").c_str(),
                          nullptr, nullptr, nullptr) == SQLITE_OK &&
             run_sql("DELETE FROM tweets WHERE " + condition);
    }
    if (!ok || sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
        status = failure("retention");
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        return 0;
    }
    return deleted;
}

}  // namespace birdwatch
