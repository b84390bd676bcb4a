// See wal_fetch.h. The stream messages are those of docs/replication.md
// ("The stream"): 'w' XLogData (start, walEnd, time, bytes) and 'k'
// keepalives (walEnd, time, reply requested).
#include "wal_fetch.h"

#include <poll.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>

#include <libpq-fe.h>

#include "walproposer/byte_order.h"

namespace wp::pg {

namespace {

constexpr std::size_t kXLogDataHeader = 1 + 8 + 8 + 8;
constexpr std::size_t kKeepaliveSize = 1 + 8 + 8 + 1;

std::string one_line(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    std::string flat;
    for (const char c : text) {
        if (c == '\n' || c == '\t') {
            if (!flat.empty() && flat.back() != ' ') flat += ' ';
        } else {
            flat += c;
        }
    }
    return flat;
}

// "16MB", "1GB" -> bytes; 0 when it is something else.
std::uint64_t parse_segment_size(const std::string& text) {
    char* end = nullptr;
    const unsigned long long n = std::strtoull(text.c_str(), &end, 10);
    const std::string unit = end ? end : "";
    if (unit == "MB") return n * 1024 * 1024;
    if (unit == "GB") return n * 1024 * 1024 * 1024;
    return 0;
}

}  // namespace

WalFetchConnection::WalFetchConnection(const SafekeeperAddress& address, WalFetchTarget target,
                                       Clock::time_point deadline)
    : address_(address), target_(std::move(target)), deadline_(deadline) {}

WalFetchConnection::~WalFetchConnection() {
    if (conn_) PQfinish(conn_);
}

bool WalFetchConnection::connect() {
    std::vector<std::pair<std::string, std::string>> kv = {
        {"host", address_.host},
        {"port", std::to_string(address_.port)},
        {"dbname", "replication"},
        {"replication", "true"},
        {"application_name", target_.application_name},
        {"connect_timeout", std::to_string(target_.connect_timeout_seconds)},
        {"options", "-c tenant_id=" + target_.tenant_hex + " -c timeline_id=" + target_.timeline_hex},
    };
    for (const auto& [k, v] : target_.extra_conninfo) kv.emplace_back(k, v);
    std::vector<const char*> keys, values;
    for (const auto& [k, v] : kv) {
        keys.push_back(k.c_str());
        values.push_back(v.c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
    conn_ = PQconnectdbParams(keys.data(), values.data(), 0);
    if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
        error_ = "cannot connect: " + libpq_error();
        return false;
    }
    error_.clear();
    return true;
}

bool WalFetchConnection::identify() {
    PGresult* res = PQexec(conn_, "IDENTIFY_SYSTEM");
    const bool ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQnfields(res) >= 3;
    if (ok) {
        pg_timeline_ = static_cast<std::uint32_t>(std::strtoul(PQgetvalue(res, 0, 1), nullptr, 10));
        const auto lsn = parse_lsn(PQgetvalue(res, 0, 2));
        commit_lsn_ = lsn ? *lsn : 0;
    } else {
        set_result_error("IDENTIFY_SYSTEM", res);
    }
    PQclear(res);
    if (!ok) return false;
    res = PQexec(conn_, "SHOW wal_segment_size");
    bool size_ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    if (size_ok) {
        const std::string text = PQgetvalue(res, 0, 0);
        const std::uint64_t size = parse_segment_size(text);
        // initdb allows powers of two from 1 MB to 1 GB.
        size_ok = size >= (1u << 20) && size <= (1u << 30) && (size & (size - 1)) == 0;
        if (size_ok)
            segment_size_ = static_cast<std::uint32_t>(size);
        else
            error_ = "unexpected wal_segment_size \"" + text + "\"";
    } else {
        set_result_error("SHOW wal_segment_size", res);
    }
    PQclear(res);
    if (size_ok) error_.clear();
    return size_ok;
}

std::optional<std::string> WalFetchConnection::timeline_history(std::uint32_t tli) {
    PGresult* res = PQexec(conn_, ("TIMELINE_HISTORY " + std::to_string(tli)).c_str());
    std::optional<std::string> content;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQnfields(res) == 2)
        content.emplace(PQgetvalue(res, 0, 1), static_cast<std::size_t>(PQgetlength(res, 0, 1)));
    else
        set_result_error("TIMELINE_HISTORY", res);
    PQclear(res);
    return content;
}

Lsn WalFetchConnection::fetch(std::uint32_t tli, Lsn start, std::vector<char>& buffer) {
    const Lsn end_wanted = start + buffer.size();
    Lsn received = start;
    const std::string command = "START_REPLICATION PHYSICAL " + format_lsn(start) + " TIMELINE " + std::to_string(tli);
    PGresult* res = PQexec(conn_, command.c_str());
    if (PQresultStatus(res) != PGRES_COPY_BOTH) {
        set_result_error("START_REPLICATION", res);
        PQclear(res);
        return received;
    }
    PQclear(res);
    error_.clear();
    for (;;) {
        char* data = nullptr;
        const int n = PQgetCopyData(conn_, &data, 1);
        if (n == 0) {
            if (!wait_readable()) return received;
            if (!PQconsumeInput(conn_)) {
                error_ = "connection lost: " + libpq_error();
                return received;
            }
            continue;
        }
        if (n == -1) return received;  // the timeline ends here (CopyDone)
        if (n < 0) {
            error_ = "stream failed: " + libpq_error();
            return received;
        }
        const std::unique_ptr<char, decltype(&PQfreemem)> holder(data, &PQfreemem);
        const auto* bytes = reinterpret_cast<const std::uint8_t*>(data);
        const auto size = static_cast<std::size_t>(n);
        if (bytes[0] == 'w' && size >= kXLogDataHeader) {
            const Lsn data_start = get_be64(bytes + 1);
            const Lsn wal_end = get_be64(bytes + 9);
            const std::size_t payload = size - kXLogDataHeader;
            if (data_start != received || data_start + payload > end_wanted) {
                error_ = "unexpected WAL message at " + format_lsn(data_start) + " (expected " +
                         format_lsn(received) + ")";
                return received;
            }
            std::memcpy(buffer.data() + (received - start), bytes + kXLogDataHeader, payload);
            received += payload;
            if (received >= end_wanted || received >= wal_end) return received;
        } else if (bytes[0] == 'k' && size >= kKeepaliveSize) {
            // Caught up with the safekeeper's commit LSN.
            if (received >= get_be64(bytes + 1)) return received;
        } else {
            error_ = "unexpected message in the WAL stream";
            return received;
        }
    }
}

bool WalFetchConnection::wait_readable() {
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
        if (left <= 0) break;
        pollfd fd{PQsocket(conn_), POLLIN, 0};
        const int r = poll(&fd, 1, static_cast<int>(left));
        if (r > 0) return true;
        if (r < 0 && errno != EINTR) {
            error_ = std::string("poll: ") + std::strerror(errno);
            return false;
        }
    }
    error_ = "timed out";
    return false;
}

std::string WalFetchConnection::libpq_error() const {
    return conn_ ? one_line(PQerrorMessage(conn_)) : "out of memory";
}

void WalFetchConnection::set_result_error(const char* what, const PGresult* res) {
    const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const std::string code = state ? state : "";
    // 42704 unknown timeline; 55000 nothing written yet, or not in this
    // safekeeper's history; 58P01 no history file / WAL already removed.
    not_there_ = code == "42704" || code == "55000" || code == "58P01";
    const std::string message = one_line(PQresultErrorMessage(res));
    error_ = std::string(what) + ": " + (message.empty() ? libpq_error() : message);
}

}  // namespace wp::pg
