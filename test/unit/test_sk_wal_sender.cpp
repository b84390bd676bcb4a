// End-to-end test of the safekeeper's WAL sender (send_wal/replication_commands.h):
// spawns build/safekeeper (or $WP_SAFEKEEPER_BIN), pushes generated WAL as a
// proposer, and reads it back with START_REPLICATION over a raw v3
// connection, checking the message shape rules and the commit_lsn bound.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <thread>

#include "support/push_client.h"
#include "test_sk_helpers.h"
#include "timeline/timeline.h"
#include "walproposer/byte_order.h"
#include "storage/wal_format.h"
#include "support/wal_generator.h"

using namespace wp;
using namespace wp::sk;

namespace {

constexpr std::uint32_t kSeg = 1u << 20;
constexpr std::uint64_t kSysId = 4242;
constexpr Lsn kStart = 0x3000000;

class Daemon {
  public:
    Daemon() : port_(sk_test::free_port()), http_port_(sk_test::free_port()) {
        char tmpl[] = "/tmp/sk_sender_XXXXXX";
        REQUIRE(::mkdtemp(tmpl));
        dir_ = std::string(tmpl) + "/data";
    }
    ~Daemon() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        std::error_code ec;
        std::filesystem::remove_all(std::filesystem::path(dir_).parent_path(), ec);
    }
    void start() {
        pid_ = sk_test::spawn_safekeeper(dir_, 3, port_, http_port_);
        for (int i = 0; i < 200; ++i) {
            PushClient c;
            if (c.connect("127.0.0.1", port_, {})) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        FAIL("safekeeper did not start; see " << dir_ << ".log");
    }
    void stop() {
        ::kill(pid_, SIGTERM);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }
    std::uint16_t port() const { return port_; }

  private:
    std::string dir_;
    std::uint16_t port_, http_port_;
    pid_t pid_ = -1;
};

std::string be32(std::uint32_t v) {
    std::string s;
    put_be32(s, v);
    return s;
}
std::string be64(std::uint64_t v) {
    std::string s;
    put_be64(s, v);
    return s;
}
std::uint64_t get64(const std::string& p, std::size_t off) {
    return get_be64(p.data() + off);
}
std::uint32_t get32(const std::string& p, std::size_t off) {
    return get_be32(p.data() + off);
}
std::string query(const std::string& q) {
    return "Q" + be32(static_cast<std::uint32_t>(q.size() + 5)) + q + '\0';
}
std::string copy_data(const std::string& payload) {
    return "d" + be32(static_cast<std::uint32_t>(payload.size() + 4)) + payload;
}

bool readable_within(int fd, int ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, ms) > 0;
}

class Proposer {
  public:
    Proposer(std::uint16_t port, const Id128& id, std::uint32_t pg_timeline = 1,
             const std::string& history = "")
        : gen_(kSysId, kSeg, pg_timeline, kStart) {
        REQUIRE(c_.connect(
            "127.0.0.1", port,
            {{"options", "-c tenant_id=" + format_id(id) + " -c timeline_id=" + format_id(id)}}));
        REQUIRE(c_.start_wal_push());
        ProposerGreeting g = sk_test::greeting(kSysId, kSeg, id, id, pg_timeline);
        g.pg_timeline_history = history;
        REQUIRE(c_.send(g));
        REQUIRE(c_.receive());
        REQUIRE(c_.send(VoteRequest{1}));
        REQUIRE(c_.receive());
        ProposerElected e;
        e.term = 1;
        e.term_history = {{1, kStart}};
        e.start_streaming_lsn = kStart;
        REQUIRE(c_.send(e));
        REQUIRE(c_.receive());
    }
    // Appends `bytes` of WAL reporting `commit` as commit_lsn; returns the flush LSN.
    Lsn append(std::size_t bytes, Lsn commit) {
        std::vector<std::uint8_t> wal = gen_.append_bytes(bytes, 3000);
        const Lsn begin = gen_.position() - wal.size();
        all_.insert(all_.end(), wal.begin(), wal.end());
        Lsn flushed = 0;
        for (std::size_t off = 0; off < wal.size(); off += 256 * 1024) {
            AppendRequest a;
            a.term = 1;
            a.begin_lsn = begin + off;
            const std::size_t n = std::min<std::size_t>(256 * 1024, wal.size() - off);
            a.end_lsn = a.begin_lsn + n;
            a.commit_lsn = commit;
            a.wal.assign(wal.begin() + static_cast<long>(off),
                         wal.begin() + static_cast<long>(off + n));
            REQUIRE(c_.send(a));
            auto r = c_.receive();
            REQUIRE(r);
            flushed = std::get<AppendResponse>(*r).flush_lsn;
        }
        return flushed;
    }
    // Heartbeat that moves commit_lsn.
    AppendResponse commit(Lsn commit) {
        AppendRequest a;
        a.term = 1;
        a.begin_lsn = a.end_lsn = gen_.position();
        a.commit_lsn = commit;
        REQUIRE(c_.send(a));
        auto r = c_.receive();
        REQUIRE(r);
        return std::get<AppendResponse>(*r);
    }
    const std::vector<std::uint8_t>& all() const { return all_; }

  private:
    PushClient c_;
    WalGenerator gen_;
    std::vector<std::uint8_t> all_;
};

struct QueryResult {
    std::string error;
    std::vector<std::vector<std::optional<std::string>>> rows;
};

// Runs a simple query, collecting DataRows.
QueryResult run_query(PushClient& c, const std::string& sql) {
    QueryResult out;
    REQUIRE(c.send_raw(query(sql)));
    for (;;) {
        char type = 0;
        std::string p;
        REQUIRE(c.read_backend_message(type, p));
        if (type == 'E') out.error = PushClient::error_text(p);
        if (type == 'Z') return out;
        if (type != 'D') continue;
        const std::size_t n = get_be16(p.data());
        std::size_t off = 2;
        std::vector<std::optional<std::string>> row;
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint32_t len = get32(p, off);
            off += 4;
            if (len == 0xFFFFFFFF) {
                row.emplace_back(std::nullopt);
                continue;
            }
            row.emplace_back(p.substr(off, len));
            off += len;
        }
        out.rows.push_back(std::move(row));
    }
}

// Reads XLogData until `until`, checking the shape rules; appends the bytes.
void read_until(PushClient& r, Lsn& next, Lsn until, Lsn commit, std::string& got) {
    while (next < until) {
        REQUIRE(readable_within(r.fd(), 10000));
        char type = 0;
        std::string payload;
        REQUIRE(r.read_backend_message(type, payload));
        REQUIRE(type == 'd');
        REQUIRE(!payload.empty());
        if (payload[0] == 'k') continue;
        REQUIRE(payload[0] == 'w');
        const Lsn start = get64(payload, 1);
        const Lsn wal_end = get64(payload, 9);
        const std::size_t len = payload.size() - 25;
        REQUIRE(start == next);
        CHECK(wal_end == commit);
        CHECK(len > 0);
        CHECK(len <= 16 * kWalPageSize);
        const Lsn end = start + len;
        CHECK(end <= commit);  // never beyond commit_lsn
        CHECK((end % kWalPageSize == 0 || end == commit));
        CHECK(start / kSeg == (end - 1) / kSeg);  // never spans two segments
        got.append(payload, 25, len);
        next = end;
    }
}

}  // namespace

TEST_CASE("WAL sender: page-aligned XLogData up to commit_lsn, woken by commits",
          "[sk][replication][daemon]") {
    Daemon d;
    d.start();
    Id128 id{};
    id.fill(0x5a);
    Proposer p(d.port(), id);
    // 2.5 segments flushed, 1.3 committed (inside a page).
    const Lsn flushed = p.append(kSeg * 5 / 2, 0);
    const Lsn commit1 = kStart + kSeg + kSeg * 3 / 10 + 100;
    REQUIRE(flushed > commit1);
    CHECK(p.commit(commit1).commit_lsn == commit1);

    PushClient r;  // no ids: the only timeline is served
    REQUIRE(
        r.connect("127.0.0.1", d.port(), {{"replication", "true"}, {"application_name", "unit"}}));
    auto err = r.simple_query("IDENTIFY_SYSTEM");
    REQUIRE(err);
    CHECK(*err == "");
    err = r.simple_query("START_REPLICATION " + format_lsn(commit1 + 1) + " TIMELINE 1");
    REQUIRE(err);
    CHECK_THAT(*err, Catch::Contains("ahead of the commit position"));
    err = r.simple_query("START_REPLICATION " + format_lsn(kStart - kSeg) + " TIMELINE 1");
    REQUIRE(err);
    CHECK_THAT(*err, Catch::Contains("before the first WAL"));

    REQUIRE(r.send_raw(
        query("START_REPLICATION SLOT \"s\" PHYSICAL " + format_lsn(kStart) + " TIMELINE 1")));
    char type = 0;
    std::string payload;
    REQUIRE(r.read_backend_message(type, payload));
    REQUIRE(type == 'W');

    Lsn next = kStart;
    std::string got;
    read_until(r, next, commit1, commit1, got);
    CHECK(next == commit1);
    // Nothing more while commit_lsn stays (WAL up to `flushed` is there).
    for (int i = 0; i < 5 && readable_within(r.fd(), 100); ++i) {
        REQUIRE(r.read_backend_message(type, payload));
        CHECK(payload[0] == 'k');
    }
    // A reply request is answered at once with a keepalive.
    REQUIRE(r.send_raw(copy_data("r" + be64(commit1) + be64(commit1) + be64(kStart) + be64(0) +
                                 std::string(1, '\1'))));
    REQUIRE(readable_within(r.fd(), 5000));
    REQUIRE(r.read_backend_message(type, payload));
    CHECK(payload[0] == 'k');
    CHECK(get64(payload, 1) == commit1);

    // The next commit wakes the sender.
    CHECK(p.commit(flushed).commit_lsn == flushed);
    read_until(r, next, flushed, flushed, got);
    CHECK(next == flushed);
    REQUIRE(got.size() == flushed - kStart);
    CHECK(std::equal(got.begin(), got.end(), reinterpret_cast<const char*>(p.all().data())));

    // Hot-standby feedback reaches the proposer in the next AppendResponse.
    REQUIRE(r.send_raw(copy_data("h" + be64(0) + be32(1000) + be32(2) + be32(0) + be32(0))));
    bool seen = false;
    for (int i = 0; i < 100 && !seen; ++i) {
        seen = p.commit(flushed).hs_xmin == ((2ull << 32) | 1000);
        if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(seen);

    // CopyDone ends the stream cleanly and the session goes on.
    REQUIRE(r.send_raw("c" + be32(4)));
    bool done = false, complete = false, ready = false;
    while (!ready) {
        REQUIRE(readable_within(r.fd(), 5000));
        REQUIRE(r.read_backend_message(type, payload));
        if (type == 'c') done = true;
        if (type == 'C') complete = true;
        if (type == 'Z') ready = true;
    }
    CHECK(done);
    CHECK(complete);
    // A start exactly at commit_lsn is accepted and waits for more.
    REQUIRE(r.send_raw(query("START_REPLICATION " + format_lsn(flushed) + " TIMELINE 1")));
    REQUIRE(r.read_backend_message(type, payload));
    REQUIRE(type == 'W');
    CHECK_FALSE(readable_within(r.fd(), 300));
    REQUIRE(r.send_raw("c" + be32(4)));
    for (bool ready = false; !ready;) {
        REQUIRE(readable_within(r.fd(), 5000));
        REQUIRE(r.read_backend_message(type, payload));
        CHECK(type != 'd');
        ready = type == 'Z';
    }
    err = r.simple_query("READ_REPLICATION_SLOT s");
    REQUIRE(err);
    CHECK(*err == "");
    err = r.simple_query("SHOW wal_segment_size");
    REQUIRE(err);
    CHECK(*err == "");
    err = r.simple_query("SHOW work_mem");
    REQUIRE(err);
    CHECK_THAT(*err, Catch::Contains("unrecognized configuration parameter"));
}

TEST_CASE("WAL sender: IDENTIFY_SYSTEM and TIMELINE_HISTORY from the proposer's greeting, durably",
          "[sk][replication][daemon]") {
    Daemon d;
    d.start();
    Id128 id{};
    id.fill(0x6b);
    const std::string tli2 = "1\t0/2000158\tno recovery target specified\n";
    const std::string tli3 = tli2 + "\n2\t0/3010000\tno recovery target specified\n";
    {
        Proposer p(d.port(), id, 3, tli3);
        const Lsn flushed = p.append(100000, 0);
        p.commit(flushed);
    }
    for (int round = 0; round < 2; ++round) {  // before and after a restart
        INFO("round " << round);
        PushClient r;
        REQUIRE(r.connect(
            "127.0.0.1", d.port(),
            {{"replication", "true"},
             {"options", "-c tenant_id=" + format_id(id) + " -c timeline_id=" + format_id(id)}}));
        QueryResult q = run_query(r, "IDENTIFY_SYSTEM");
        REQUIRE(q.error == "");
        REQUIRE(q.rows.size() == 1);
        REQUIRE(q.rows[0].size() == 4);
        CHECK(q.rows[0][0] == std::to_string(kSysId));
        CHECK(q.rows[0][1] == std::string("3"));
        CHECK_FALSE(q.rows[0][3].has_value());  // dbname NULL
        q = run_query(r, "TIMELINE_HISTORY 3");
        REQUIRE(q.error == "");
        REQUIRE(q.rows.size() == 1);
        CHECK(q.rows[0][0] == std::string("00000003.history"));
        CHECK(q.rows[0][1] == tli3);
        q = run_query(r, "TIMELINE_HISTORY 2");
        REQUIRE(q.rows.size() == 1);
        CHECK(q.rows[0][0] == std::string("00000002.history"));
        CHECK(q.rows[0][1] == tli2);
        CHECK_THAT(run_query(r, "TIMELINE_HISTORY 1").error, Catch::Contains("00000001.history"));
        CHECK_THAT(run_query(r, "TIMELINE_HISTORY 4").error, Catch::Contains("00000004.history"));
        CHECK_THAT(run_query(r, "START_REPLICATION 0/3000000 TIMELINE 1").error,
                   Catch::Contains("not in this server's history"));
        CHECK_THAT(run_query(r, "START_REPLICATION 0/3010008 TIMELINE 2").error,
                   Catch::Contains("not in this server's history"));
        CHECK_THAT(run_query(r, "START_REPLICATION 0/3000000 TIMELINE 4").error,
                   Catch::Contains("not in this server's history"));
        // At the switch point: no stream, just the next timeline.
        q = run_query(r, "START_REPLICATION 0/3010000 TIMELINE 2");
        REQUIRE(q.error == "");
        REQUIRE(q.rows.size() == 1);
        CHECK(q.rows[0][0] == std::string("3"));
        CHECK(q.rows[0][1] == std::string("0/3010000"));
        // Before it: WAL up to the switch point, CopyDone, then the next timeline.
        REQUIRE(r.send_raw(query("START_REPLICATION 0/3000000 TIMELINE 2")));
        char type = 0;
        std::string payload;
        REQUIRE(r.read_backend_message(type, payload));
        REQUIRE(type == 'W');
        Lsn next = 0x3000000;
        std::string got;
        read_until(r, next, 0x3010000, 0x3010000, got);
        CHECK(next == 0x3010000);
        REQUIRE(readable_within(r.fd(), 5000));
        REQUIRE(r.read_backend_message(type, payload));
        CHECK(type == 'c');
        REQUIRE(r.send_raw("c" + be32(4)));
        std::vector<char> types;
        std::string next_tli;
        for (;;) {
            REQUIRE(readable_within(r.fd(), 5000));
            REQUIRE(r.read_backend_message(type, payload));
            types.push_back(type);
            if (type == 'D') next_tli = payload.substr(6, 1);
            if (type == 'Z') break;
        }
        CHECK(types == std::vector<char>{'T', 'D', 'C', 'C', 'Z'});
        CHECK(next_tli == "3");
        q = run_query(r, "READ_REPLICATION_SLOT nobody");
        REQUIRE(q.rows.size() == 1);
        CHECK(q.rows[0][0] == std::string("physical"));
        CHECK_FALSE(q.rows[0][1].has_value());
        q = run_query(r, "SHOW wal_segment_size");
        REQUIRE(q.rows.size() == 1);
        CHECK(q.rows[0][0] == std::string("1MB"));
        r.close();
        if (round == 0) {
            d.stop();
            d.start();
        }
    }
}
