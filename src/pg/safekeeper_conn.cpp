#include "safekeeper_conn.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cstring>

// WL_SOCKET_* values come from PostgreSQL's latch.h; this file stays free of
// server headers, so the two bits are restated and checked in worker_wait.cpp.
#include "wait_bits.h"

namespace wp::pg {

namespace {

std::string libpq_error(PGconn* conn) {
    std::string message = conn ? PQerrorMessage(conn) : "out of memory";
    while (!message.empty() && (message.back() == '\n' || message.back() == ' '))
        message.pop_back();
    // libpq's messages can span lines; keep the status row on one line.
    for (char& c : message)
        if (c == '\n' || c == '\t') c = ' ';
    return message.empty() ? "connection failed" : message;
}

}  // namespace

SafekeeperConnection::~SafekeeperConnection() { close(); }

void SafekeeperConnection::close() {
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
    lookup_.reset();  // an abandoned lookup finishes on its own thread
    pending_keywords_.clear();
    pending_values_.clear();
    state_ = State::kClosed;
    connect_wants_write_ = false;
    output_pending_ = false;
    send_queue_.clear();
}

wp::Status SafekeeperConnection::fail(const std::string& what) {
    std::string message = what + ": " + libpq_error(conn_);
    close();
    return wp::Status::error(std::move(message));
}

wp::Status SafekeeperConnection::start(const std::vector<std::string>& keywords,
                                       const std::vector<std::string>& values, void (*wake)()) {
    close();
    std::string host;
    std::string port = "5432";
    bool has_hostaddr = false;
    for (std::size_t i = 0; i < keywords.size() && i < values.size(); ++i) {
        if (keywords[i] == "host") host = values[i];
        if (keywords[i] == "port") port = values[i];
        if (keywords[i] == "hostaddr" && !values[i].empty()) has_hostaddr = true;
    }
    if (has_hostaddr || host_needs_no_lookup(host) || host.find(',') != std::string::npos)
        return connect_now(keywords, values);
    unsigned long port_number = 0;
    try {
        port_number = std::stoul(port);
    } catch (const std::exception&) {
        return wp::Status::error("invalid port \"" + port + "\"");
    }
    if (port_number == 0 || port_number > 65535)
        return wp::Status::error("invalid port \"" + port + "\"");
    lookup_ = resolve_host_async(host, static_cast<std::uint16_t>(port_number), wake);
    pending_keywords_ = keywords;
    pending_values_ = values;
    state_ = State::kResolving;
    return advance();  // a lookup that could not start is already done
}

wp::Status SafekeeperConnection::advance() {
    if (state_ != State::kResolving || !lookup_->done()) return wp::Status();
    const std::string error = lookup_->error();
    if (!error.empty()) {
        close();
        return wp::Status::error("cannot connect: " + error);
    }
    // One "host" entry per address, so libpq tries each in turn and still
    // knows the name each one stands for.
    const std::string addresses = lookup_->addresses();
    const std::size_t address_count =
        1 + static_cast<std::size_t>(std::count(addresses.begin(), addresses.end(), ','));
    std::vector<std::string> keywords = std::move(pending_keywords_);
    std::vector<std::string> values = std::move(pending_values_);
    for (std::size_t k = 0; k < keywords.size(); ++k) {
        if (keywords[k] != "host") continue;
        const std::string name = values[k];
        for (std::size_t i = 1; i < address_count; ++i) values[k] += "," + name;
    }
    keywords.emplace_back("hostaddr");
    values.push_back(addresses);
    return connect_now(keywords, values);
}

wp::Status SafekeeperConnection::connect_now(const std::vector<std::string>& keywords,
                                             const std::vector<std::string>& values) {
    close();
    std::vector<const char*> k, v;
    for (const auto& s : keywords) k.push_back(s.c_str());
    for (const auto& s : values) v.push_back(s.c_str());
    k.push_back(nullptr);
    v.push_back(nullptr);
    conn_ = PQconnectStartParams(k.data(), v.data(), 0);
    if (conn_ == nullptr || PQstatus(conn_) == CONNECTION_BAD) return fail("cannot connect");
    if (PQsetnonblocking(conn_, 1) != 0) return fail("cannot make the connection non-blocking");
    state_ = State::kConnecting;
    connect_wants_write_ = true;  // libpq starts in PGRES_POLLING_WRITING
    return wp::Status();
}

namespace {

// Why a keyword of walproposer.safekeeper_conninfo is refused; nullptr when
// it may be set.
const char* refused_keyword_reason(const std::string& keyword) {
    if (keyword == "host" || keyword == "hostaddr" || keyword == "port")
        return "each safekeeper's host and port come from walproposer.safekeepers";
    if (keyword == "options")
        return "the proposer's startup options carry walproposer.tenant_id and "
               "walproposer.timeline_id";
    if (keyword == "dbname" || keyword == "replication")
        return "the proposer sets it for the push protocol";
    return nullptr;
}

bool valid_sslmode(const std::string& value) {
    // libpq's own list (connectOptions2); empty leaves libpq's default.
    for (const char* mode :
         {"", "disable", "allow", "prefer", "require", "verify-ca", "verify-full"})
        if (value == mode) return true;
    return false;
}

}  // namespace

wp::Result<ConninfoPairs> parse_safekeeper_conninfo(const std::string& text) {
    ConninfoPairs pairs;
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) return pairs;
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse(text.c_str(), &error);
    if (options == nullptr) {
        std::string message = error ? error : "out of memory";
        if (error) PQfreemem(error);
        while (!message.empty() && (message.back() == '\n' || message.back() == ' '))
            message.pop_back();
        return wp::Status::invalid(message);
    }
    std::string refused;
    for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
        if (o->val == nullptr) continue;
        const std::string keyword = o->keyword;
        if (const char* reason = refused_keyword_reason(keyword)) {
            refused = "\"" + keyword + "\" cannot be set here: " + reason;
            break;
        }
        if (keyword == "sslmode" && !valid_sslmode(o->val)) {
            refused = std::string("invalid sslmode value: \"") + o->val + "\"";
            break;
        }
        pairs.emplace_back(keyword, o->val);
    }
    PQconninfoFree(options);
    if (!refused.empty()) return wp::Status::invalid(refused);
    return pairs;
}

ConninfoPairs push_conninfo(const PushTarget& target) {
    std::string options =
        "-c tenant_id=" + target.tenant_hex + " -c timeline_id=" + target.timeline_hex;
    if (!target.extra_options.empty()) options += " " + target.extra_options;
    ConninfoPairs pairs = {{"host", target.host},
                           {"port", std::to_string(target.port)},
                           {"dbname", "postgres"},
                           {"user", "walproposer"},
                           {"application_name", target.application_name},
                           {"options", options},
                           {"keepalives", "1"},
                           {"keepalives_idle", "10"},
                           {"keepalives_interval", "5"},
                           {"keepalives_count", "3"},
                           {"sslmode", "prefer"}};
    for (const auto& [keyword, value] : target.extra_conninfo) {
        if (refused_keyword_reason(keyword) != nullptr) continue;  // the proposer's own
        auto at = std::find_if(pairs.begin(), pairs.end(),
                               [&](const auto& pair) { return pair.first == keyword; });
        if (at != pairs.end())
            at->second = value;
        else
            pairs.emplace_back(keyword, value);
    }
    return pairs;
}

wp::Status SafekeeperConnection::start(const PushTarget& target, void (*wake)()) {
    std::vector<std::string> keywords, values;
    for (auto& [keyword, value] : push_conninfo(target)) {
        keywords.push_back(std::move(keyword));
        values.push_back(std::move(value));
    }
    return start(keywords, values, wake);
}

int SafekeeperConnection::socket() const { return conn_ ? PQsocket(conn_) : -1; }

int SafekeeperConnection::wanted_events() const {
    switch (state_) {
        case State::kClosed:
        case State::kResolving: return 0;
        case State::kConnecting: return connect_wants_write_ ? kWaitWritable : kWaitReadable;
        case State::kStartingPush:
        case State::kStreaming:
            return kWaitReadable | (output_pending_ ? kWaitWritable : 0);
    }
    return 0;
}

wp::Status SafekeeperConnection::flush_output() {
    for (;;) {
        const int rc = PQflush(conn_);
        if (rc < 0) return fail("cannot send to safekeeper");
        output_pending_ = rc == 1 || !send_queue_.empty();
        if (rc == 1 || send_queue_.empty()) return wp::Status();
        // libpq's buffer is empty: hand it the next message.
        const std::vector<std::uint8_t>& next = send_queue_.front();
        if (PQputCopyData(conn_, reinterpret_cast<const char*>(next.data()),
                          static_cast<int>(next.size())) != 1)
            return fail("cannot queue data for safekeeper");
        send_queue_.pop_front();
    }
}

wp::Status SafekeeperConnection::read_copy_data(std::vector<std::vector<std::uint8_t>>& inbox) {
    for (;;) {
        char* buffer = nullptr;
        const int length = PQgetCopyData(conn_, &buffer, 1);
        if (length > 0) {
            inbox.emplace_back(reinterpret_cast<std::uint8_t*>(buffer),
                               reinterpret_cast<std::uint8_t*>(buffer) + length);
            PQfreemem(buffer);
            continue;
        }
        if (length == 0) return wp::Status();  // nothing more without blocking
        // -1: the server ended the copy (usually with an ErrorResponse);
        // -2: a connection error.
        std::string reason = "safekeeper closed the stream";
        if (PGresult* result = PQgetResult(conn_)) {
            const char* message = PQresultErrorMessage(result);
            if (message && *message) reason = std::string("safekeeper: ") + message;
            PQclear(result);
        }
        while (!reason.empty() && reason.back() == '\n') reason.pop_back();
        if (length == -2) return fail("connection lost");
        close();
        return wp::Status::error(reason);
    }
}

wp::Status SafekeeperConnection::on_ready(std::vector<std::vector<std::uint8_t>>& inbox,
                                          bool& became_streaming) {
    became_streaming = false;
    switch (state_) {
        case State::kClosed:
        case State::kResolving: return wp::Status();
        case State::kConnecting: {
            const PostgresPollingStatusType poll = PQconnectPoll(conn_);
            if (poll == PGRES_POLLING_FAILED) return fail("cannot connect");
            if (poll == PGRES_POLLING_READING || poll == PGRES_POLLING_WRITING) {
                connect_wants_write_ = poll == PGRES_POLLING_WRITING;
                return wp::Status();
            }
            // Connected: ask for the proposer stream.
            if (!PQsendQuery(conn_, "START_WAL_PUSH")) return fail("cannot send START_WAL_PUSH");
            state_ = State::kStartingPush;
            return flush_output();
        }
        case State::kStartingPush: {
            if (output_pending_) {
                if (auto status = flush_output(); !status.ok()) return status;
            }
            if (!PQconsumeInput(conn_)) return fail("connection lost");
            if (PQisBusy(conn_)) return wp::Status();
            PGresult* result = PQgetResult(conn_);
            if (result == nullptr) return fail("START_WAL_PUSH returned no result");
            const ExecStatusType status = PQresultStatus(result);
            if (status != PGRES_COPY_BOTH) {
                std::string message = PQresultErrorMessage(result);
                PQclear(result);
                while (!message.empty() && message.back() == '\n') message.pop_back();
                close();
                return wp::Status::error("START_WAL_PUSH refused: " +
                                         (message.empty() ? std::string("no CopyBoth") : message));
            }
            PQclear(result);
            state_ = State::kStreaming;
            became_streaming = true;
            return read_copy_data(inbox);
        }
        case State::kStreaming: {
            if (output_pending_) {
                if (auto status = flush_output(); !status.ok()) return status;
            }
            if (!PQconsumeInput(conn_)) return fail("connection lost");
            return read_copy_data(inbox);
        }
    }
    return wp::Status();
}

wp::Status SafekeeperConnection::send(std::vector<std::uint8_t>&& payload) {
    if (state_ != State::kStreaming) return wp::Status::error("not streaming");
    send_queue_.push_back(std::move(payload));
    // With output already waiting for the socket, the worker's wait set
    // reports it writable and the queue moves on then.
    if (output_pending_) return wp::Status();
    return flush_output();
}

}  // namespace wp::pg
