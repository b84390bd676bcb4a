// End-to-end tests of the safekeeper daemon binary: spawns build/safekeeper
// (or $WP_SAFEKEEPER_BIN) on free ports and speaks the proposer protocol to
// it over TCP with PushClient.
#include <catch2/catch.hpp>
#include <cerrno>
#include <poll.h>

#include "http/httplib_abi.h"
#include <nlohmann/json.hpp>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <cstdlib>
#include <climits>
#include <cstring>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <dirent.h>
#include <thread>

#include "auth/scram.h"
#include "storage/durable_file.h"
#include "wire/pg_client.h"
#include "support/power_loss_fs.h"
#include "support/push_client.h"
#include "test_sk_helpers.h"
#include "timeline/timeline.h"
#include "support/wal_generator.h"

using namespace wp;
using namespace wp::sk;
using sk_test::make_id;

namespace {

class Daemon {
  public:
    explicit Daemon(std::string dir, int node_id = 7, std::vector<std::string> extra = {})
        : dir_(std::move(dir)),
          node_id_(node_id),
          extra_(std::move(extra)),
          pg_port_(sk_test::free_port()),
          http_port_(sk_test::free_port()) {}
    ~Daemon() { kill(SIGKILL); }
    // `binary`: "" for build/safekeeper (or $WP_SAFEKEEPER_BIN).
    void start(const std::string& binary = "") {
        pid_ = sk_test::spawn_safekeeper(dir_, node_id_, pg_port_, http_port_, binary, extra_);
        // Wait until it accepts connections.
        for (int i = 0; i < 200; ++i) {
            PushClient c;
            if (c.connect("127.0.0.1", pg_port_, {})) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        FAIL("safekeeper did not start; see " << dir_ << ".log");
    }
    int kill(int sig) {
        if (pid_ <= 0) return -1;
        ::kill(pid_, sig);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        return status;
    }
    bool alive() const { return pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == 0; }
    pid_t pid() const { return pid_; }
    std::uint16_t pg_port() const { return pg_port_; }
    std::uint16_t http_port() const { return http_port_; }

    const std::string& dir() const { return dir_; }

  private:
    std::string dir_;
    int node_id_;
    std::vector<std::string> extra_;
    std::uint16_t pg_port_, http_port_;
    pid_t pid_ = -1;
};

std::string temp_dir() {
    char tmpl[] = "/tmp/sk_daemon_XXXXXX";
    REQUIRE(::mkdtemp(tmpl));
    return std::string(tmpl) + "/data";
}

constexpr std::uint32_t kSeg = 1u << 20;
constexpr std::uint64_t kSysId = 555;
constexpr Lsn kStart = 0x2000000;

std::map<std::string, std::string> options_for(const Id128& tenant, const Id128& timeline) {
    return {{"options",
             "-c tenant_id=" + format_id(tenant) + " -c timeline_id=" + format_id(timeline)}};
}

// Opens the push stream, greets with `g` and asks for a vote in `term`
// (with the fence `fence`, as a sync proposer does). The AcceptorGreeting
// goes to `*greeted_out` if given.
VoteResponse greet_and_vote(PushClient& c, const ProposerGreeting& g, Term term,
                            std::uint32_t fence = 0, AcceptorGreeting* greeted_out = nullptr) {
    REQUIRE(c.start_wal_push());
    REQUIRE(c.send(g));
    auto greeted = c.receive();
    REQUIRE(greeted);
    REQUIRE(std::holds_alternative<AcceptorGreeting>(*greeted));
    CHECK(std::get<AcceptorGreeting>(*greeted).node_id == 7);
    if (greeted_out) *greeted_out = std::get<AcceptorGreeting>(*greeted);
    REQUIRE(c.send(VoteRequest{term, fence}));
    auto v = c.receive();
    REQUIRE(v);
    return std::get<VoteResponse>(*v);
}

// Sends ProposerElected and returns the acceptor's flush LSN (where
// streaming continues).
Lsn announce_elected(PushClient& c, Term term, TermHistory history, Lsn start) {
    REQUIRE(c.send(ProposerElected{term, start, std::move(history)}));
    auto r = c.receive();
    REQUIRE(r);
    const auto& resp = std::get<AppendResponse>(*r);
    CHECK(resp.term == term);
    return resp.flush_lsn;
}

// The greeting of a sync proposer (pg_walproposer_sync): no identity of its
// own.
ProposerGreeting sync_greeting(const Id128& tenant, const Id128& timeline) {
    ProposerGreeting g;
    g.flags = kGreetingFlagSync;
    g.tenant_id = tenant;
    g.timeline_id = timeline;
    return g;
}

// Connection options of a sync proposer: it never creates a timeline.
std::map<std::string, std::string> sync_options_for(const Id128& tenant, const Id128& timeline) {
    auto o = options_for(tenant, timeline);
    o["options"] += " -c create_timeline=false";
    return o;
}

// The AppendRequest of `term` carrying wal[off, off + up to `piece`) at
// begin + off.
AppendRequest append_piece(Term term, Lsn begin, const std::vector<std::uint8_t>& wal,
                           std::size_t off, std::size_t piece) {
    AppendRequest a;
    a.term = term;
    a.begin_lsn = begin + off;
    const std::size_t len = std::min(piece, wal.size() - off);
    a.end_lsn = a.begin_lsn + len;
    a.wal.assign(wal.begin() + static_cast<long>(off), wal.begin() + static_cast<long>(off + len));
    return a;
}

// Queues (without waiting) AppendRequests of `term` carrying `wal` from
// `begin`, in 64 kB pieces; returns how many, i.e. the responses due.
std::size_t queue_appends(PushClient& c, Term term, Lsn begin,
                          const std::vector<std::uint8_t>& wal) {
    std::size_t n = 0;
    for (std::size_t off = 0; off < wal.size(); off += 64 * 1024, ++n)
        REQUIRE(c.send(append_piece(term, begin, wal, off, 64 * 1024)));
    return n;
}

// Appends `wal` at `begin` in `term` and waits for every response; returns
// the last flush LSN reported.
Lsn append_all(PushClient& c, Term term, Lsn begin, const std::vector<std::uint8_t>& wal) {
    const std::size_t n = queue_appends(c, term, begin, wal);
    Lsn flush = 0;
    for (std::size_t i = 0; i < n; ++i) {
        auto r = c.receive();
        REQUIRE(r);
        const auto& resp = std::get<AppendResponse>(*r);
        REQUIRE(resp.term == term);
        flush = resp.flush_lsn;
    }
    return flush;
}

// Sends ProposerElected and returns the ErrorResponse text ("SQLSTATE
// message"); fails the test if it is accepted.
std::string elected_refused(PushClient& c, Term term, TermHistory history, Lsn start) {
    REQUIRE(c.send(ProposerElected{term, start, std::move(history)}));
    auto r = c.receive();
    REQUIRE_FALSE(r);
    return r.status().message();
}

// Greets, votes and gets elected in `term` with `history`; returns the
// acceptor's flush LSN (where streaming starts).
Lsn become_proposer(PushClient& c, const Id128& tenant, const Id128& timeline, Term term,
                    TermHistory history) {
    REQUIRE(
        greet_and_vote(c, sk_test::greeting(kSysId, kSeg, tenant, timeline), term).vote_granted);
    const Lsn start = history.back().lsn;
    return announce_elected(c, term, std::move(history), start);
}

// Streams `total` bytes of generated WAL in 128 kB appends with up to
// `window` in flight. Returns the highest acknowledged flush LSN.
Lsn stream(PushClient& c, Term term, WalGenerator& gen, std::size_t total, std::size_t window = 16,
           std::function<void(Lsn)> on_ack = nullptr) {
    std::vector<std::uint8_t> wal = gen.append_bytes(total, 7000);
    Lsn begin = gen.position() - wal.size();
    std::size_t sent = 0, in_flight = 0;
    Lsn acked = 0;
    while (sent < wal.size() || in_flight > 0) {
        while (sent < wal.size() && in_flight < window) {
            const AppendRequest a = append_piece(term, begin, wal, sent, 128 * 1024);
            if (auto st = c.send(a); !st) {
                WARN("send failed: " << st.message());
                return acked;
            }
            sent += a.wal.size();
            ++in_flight;
        }
        auto r = c.receive();
        if (!r) {
            WARN("receive failed: " << r.status().message());
            return acked;
        }
        const auto& resp = std::get<AppendResponse>(*r);
        REQUIRE(resp.term == term);
        REQUIRE(resp.flush_lsn >= acked);
        acked = resp.flush_lsn;
        if (on_ack) on_ack(acked);
        --in_flight;
    }
    return acked;
}

std::string http_get(std::uint16_t port, const std::string& path) {
    httplib::Client cli("127.0.0.1", port);
    auto res = cli.Get(path.c_str());
    if (!res) return "";
    return res->body;
}

// True when the peer closes `fd` within `timeout_ms` (anything it still sends
// first is read and dropped).
bool closed_by_peer_within(int fd, int timeout_ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    char buf[4096];
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
        const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0) return true;
        if (n < 0 && errno != EAGAIN && errno != EINTR) return true;  // reset
    }
}

}  // namespace

TEST_CASE("daemon: a reconnecting proposer takes over; the old connection is shut down",
          "[sk][daemon]") {
    const std::string dir = temp_dir();
    Daemon d(dir);
    d.start();
    const Id128 tenant = make_id(0x41), timeline = make_id(0x42);
    PushClient old_conn;
    REQUIRE(old_conn.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
    become_proposer(old_conn, tenant, timeline, 1, {{1, kStart}});
    WalGenerator gen(kSysId, kSeg, 1, kStart);
    const Lsn acked = stream(old_conn, 1, gen, 300000);
    REQUIRE(acked == gen.position());

    // The same proposer (term 1) reconnects, as after a response timeout.
    PushClient c;
    REQUIRE(c.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
    const VoteResponse v = greet_and_vote(c, sk_test::greeting(kSysId, kSeg, tenant, timeline), 1);
    CHECK_FALSE(v.vote_granted);
    CHECK(v.flush_lsn == acked);
    CHECK(announce_elected(c, 1, {{1, kStart}}, acked) == acked);  // nothing cut
    CHECK(closed_by_peer_within(old_conn.fd(), 10000));
    const Lsn more = stream(c, 1, gen, 200000);
    CHECK(more == gen.position());
}

TEST_CASE("daemon: a greeting that is never elected changes nothing", "[sk][daemon]") {
    // A promoted copy of the primary (PostgreSQL timeline 2) greets and even
    // wins a vote, but is never elected: the primary (timeline 1) must still
    // be served, and nothing of the copy is stored.
    const std::string dir = temp_dir();
    Daemon d(dir);
    d.start();
    const Id128 tenant = make_id(0x51), timeline = make_id(0x52);
    {
        PushClient c;
        REQUIRE(c.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
        become_proposer(c, tenant, timeline, 1, {{1, kStart}});
    }
    {
        PushClient copy;
        REQUIRE(copy.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
        ProposerGreeting g = sk_test::greeting(kSysId, kSeg, tenant, timeline);
        g.pg_timeline = 2;
        g.pg_timeline_history = "1\t0/2000000\tno recovery target specified\n";
        CHECK(greet_and_vote(copy, g, 2).vote_granted);
    }
    const std::string tl = http_get(
        d.http_port(), "/v1/tenant/" + format_id(tenant) + "/timeline/" + format_id(timeline));
    CHECK_THAT(tl, Catch::Contains("\"pg_timeline\":1"));
    PushClient c;
    REQUIRE(c.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
    const Lsn start = become_proposer(c, tenant, timeline, 3, {{1, kStart}, {3, kStart}});
    CHECK(start == kStart);
}

TEST_CASE("daemon: greeting, vote, election, appends, status", "[sk][daemon]") {
    const std::string dir = temp_dir();
    Daemon d(dir);
    d.start();
    const Id128 tenant = make_id(0x11), timeline = make_id(0x22);
    PushClient c;
    REQUIRE(c.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
    const Lsn start = become_proposer(c, tenant, timeline, 1, {{1, kStart}});
    CHECK(start == kStart);
    WalGenerator gen(kSysId, kSeg, 1, kStart);
    const Lsn acked = stream(c, 1, gen, 3 * kSeg + 12345);
    CHECK(acked == gen.position());

    const std::string status = http_get(d.http_port(), "/v1/status");
    CHECK_THAT(status, Catch::Contains("\"timelines\":1"));
    const std::string tl = http_get(
        d.http_port(), "/v1/tenant/" + format_id(tenant) + "/timeline/" + format_id(timeline));
    CHECK_THAT(tl, Catch::Contains("\"flush_lsn\":\"" + format_lsn(acked) + "\""));
    CHECK_THAT(tl, Catch::Contains("\"term\":1"));
    const std::string metrics = http_get(d.http_port(), "/metrics");
    CHECK_THAT(metrics, Catch::Contains("safekeeper_flush_lsn{tenant_id=\"" + format_id(tenant)));
    CHECK_THAT(metrics, Catch::Contains("safekeeper_fsync_seconds_bucket"));
    CHECK_THAT(metrics, Catch::Contains("safekeeper_segment_reservations_total{tenant_id=\"" +
                                        format_id(tenant)));
    CHECK_THAT(metrics, Catch::Contains("safekeeper_segments_created_total{tenant_id=\"" +
                                        format_id(tenant)));

    // Clean shutdown, restart: the same flush LSN comes back.
    c.close();
    const int status_code = d.kill(SIGTERM);
    CHECK(WIFEXITED(status_code));
    CHECK(WEXITSTATUS(status_code) == 0);
    d.start();
    PushClient c2;
    REQUIRE(c2.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
    REQUIRE(c2.start_wal_push());
    REQUIRE(c2.send(sk_test::greeting(kSysId, kSeg, tenant, timeline)));
    auto g = c2.receive();
    REQUIRE(g);
    CHECK(std::get<AcceptorGreeting>(*g).flush_lsn == acked);
    CHECK(std::get<AcceptorGreeting>(*g).term == 1);
    CHECK(std::get<AcceptorGreeting>(*g).last_log_term == 1);
}

TEST_CASE("daemon: SIGKILL during a stream keeps every acknowledged LSN", "[sk][daemon]") {
    const std::string dir = temp_dir();
    Daemon d(dir);
    d.start();
    const Id128 tenant = make_id(0x31), timeline = make_id(0x32);
    Lsn acked = 0;
    {
        PushClient c;
        REQUIRE(c.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
        become_proposer(c, tenant, timeline, 1, {{1, kStart}});
        WalGenerator gen(kSysId, kSeg, 1, kStart);
        int acks = 0;
        acked = stream(c, 1, gen, 8 * kSeg, 16, [&](Lsn) {
            if (++acks == 25) ::kill(::getpid(), 0), d.kill(SIGKILL);  // kill mid-stream
        });
    }
    REQUIRE(acked > kStart);
    d.start();
    PushClient c;
    REQUIRE(c.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
    REQUIRE(c.start_wal_push());
    REQUIRE(c.send(sk_test::greeting(kSysId, kSeg, tenant, timeline)));
    auto g = c.receive();
    REQUIRE(g);
    CHECK(std::get<AcceptorGreeting>(*g).flush_lsn >= acked);
    CHECK(std::get<AcceptorGreeting>(*g).term == 1);
}

// SIGKILL keeps the page cache, so the test above passes even without the
// fdatasync of the push path. Here the daemon runs on the power-loss layer
// (build/safekeeper-powerloss; SIGUSR2 drops every write not yet synced, as a
// power cut would, and exits): every flush LSN it acknowledged must still be
// there, with the same bytes. Checked: with the sync_data() call in
// WalStorage's flush removed, this test fails (the recovered flush LSN falls
// back to the start of the stream).
TEST_CASE("daemon: a power loss during a stream keeps every acknowledged LSN",
          "[sk][daemon][powerloss]") {
    const char* override_bin = std::getenv("WP_SAFEKEEPER_POWERLOSS_BIN");
    const std::string powerloss_bin = override_bin ? override_bin : "build/safekeeper-powerloss";
    REQUIRE(::access(powerloss_bin.c_str(), X_OK) == 0);
    const std::string dir = temp_dir();
    Daemon d(dir);
    d.start(powerloss_bin);
    const Id128 tenant = make_id(0x33), timeline = make_id(0x34);
    WalGenerator gen(kSysId, kSeg, 1, kStart);
    Lsn acked = 0;
    std::vector<std::uint8_t> sent;
    {
        PushClient c;
        REQUIRE(c.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
        become_proposer(c, tenant, timeline, 1, {{1, kStart}});
        int acks = 0;
        acked = stream(c, 1, gen, 6 * kSeg, 16, [&](Lsn) {
            if (++acks == 20) CHECK(WEXITSTATUS(d.kill(SIGUSR2)) == kPowerLossExitCode);
        });
    }
    REQUIRE(acked > kStart);
    d.start();  // the ordinary daemon on what the power loss left
    PushClient c;
    REQUIRE(c.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
    Id128 other{};
    other.fill(0x99);
    ProposerGreeting g = sk_test::greeting(kSysId, kSeg, tenant, timeline);
    g.proposer_id = other;
    const VoteResponse v = greet_and_vote(c, g, 2);
    CHECK(v.flush_lsn >= acked);
    // What it kept (its last bytes, up to its flush LSN, which may lie past
    // the last acknowledgement the client read) is what was sent.
    WalGenerator replay(kSysId, kSeg, 1, kStart);
    const std::vector<std::uint8_t> expected = replay.append_bytes(6 * kSeg, 7000);
    REQUIRE(v.tail_lsn >= kStart);
    REQUIRE(v.flush_lsn <= kStart + expected.size());
    REQUIRE(v.tail_lsn < v.flush_lsn);
    CHECK(v.tail ==
          std::vector<std::uint8_t>(expected.begin() + static_cast<long>(v.tail_lsn - kStart),
                                    expected.begin() + static_cast<long>(v.flush_lsn - kStart)));
}

TEST_CASE("daemon: two timelines stream at once", "[sk][daemon]") {
    const std::string dir = temp_dir();
    Daemon d(dir);
    d.start();
    Lsn results[2] = {0, 0};
    Lsn expected[2] = {0, 0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 2; ++i) {
        threads.emplace_back([&, i] {
            const Id128 tenant = make_id(0x40),
                        timeline = make_id(static_cast<std::uint8_t>(0x41 + i));
            PushClient c;
            if (!c.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline))) return;
            become_proposer(c, tenant, timeline, 1, {{1, kStart}});
            WalGenerator gen(kSysId, kSeg, 1, kStart);
            results[i] = stream(c, 1, gen, 2 * kSeg);
            expected[i] = gen.position();
        });
    }
    for (auto& t : threads) t.join();
    CHECK(results[0] == expected[0]);
    CHECK(results[1] == expected[1]);
    CHECK_THAT(http_get(d.http_port(), "/v1/status"), Catch::Contains("\"timelines\":2"));
}

TEST_CASE("daemon: a newer term takes over the stream", "[sk][daemon]") {
    const std::string dir = temp_dir();
    Daemon d(dir);
    d.start();
    const Id128 tenant = make_id(0x51), timeline = make_id(0x52);
    PushClient a, b;
    REQUIRE(a.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
    REQUIRE(b.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
    become_proposer(a, tenant, timeline, 1, {{1, kStart}});
    WalGenerator gen(kSysId, kSeg, 1, kStart);
    const Lsn acked = stream(a, 1, gen, 300000);
    become_proposer(b, tenant, timeline, 2, {{1, kStart}, {2, acked}});
    // The old proposer's next append is refused with the higher term.
    AppendRequest stale;
    stale.term = 1;
    stale.begin_lsn = acked;
    stale.end_lsn = acked;
    REQUIRE(a.send(stale));
    auto r = a.receive();
    if (r) {
        CHECK(std::get<AppendResponse>(*r).term == 2);
    }
    WalGenerator gen2(kSysId, kSeg, 1, acked, gen.last_record_start());
    const Lsn r2 = stream(b, 2, gen2, 300000);
    CHECK(r2 == gen2.position());
}

TEST_CASE("daemon: malformed input closes only the offending connection", "[sk][daemon]") {
    const std::string dir = temp_dir();
    Daemon d(dir);
    d.start();
    const Id128 tenant = make_id(0x61), timeline = make_id(0x62);
    // A healthy proposer session that is open while the bad input arrives.
    PushClient live;
    REQUIRE(live.connect("127.0.0.1", d.pg_port(), options_for(make_id(0x65), make_id(0x66))));
    become_proposer(live, make_id(0x65), make_id(0x66), 1, {{1, kStart}});
    WalGenerator live_gen(kSysId, kSeg, 1, kStart);
    const Lsn live_acked = stream(live, 1, live_gen, 100000);
    CHECK(live_acked == live_gen.position());
    auto expect_error_and_close = [&](PushClient& c) {
        char type = 0;
        std::string payload;
        bool saw_error = false;
        while (c.read_backend_message(type, payload)) {
            if (type == 'E') saw_error = true;
        }
        CHECK(saw_error);
    };
    SECTION("bad startup length") {
        PushClient c;
        REQUIRE(c.connect("127.0.0.1", d.pg_port(), {}));  // a good one first
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(d.pg_port());
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        const char junk[] = "\xff\xff\xff\xff garbage";
        REQUIRE(::send(fd, junk, sizeof junk, MSG_NOSIGNAL) > 0);
        char buf[256];
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        CHECK(n > 0);
        CHECK(buf[0] == 'E');
        ::close(fd);
    }
    SECTION("oversized message length") {
        PushClient c;
        REQUIRE(c.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
        REQUIRE(c.send_raw(std::string("Q\x7f\xff\xff\xff", 5)));
        expect_error_and_close(c);
    }
    SECTION("unknown message type in the CopyBoth stream") {
        PushClient c;
        REQUIRE(c.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
        REQUIRE(c.start_wal_push());
        REQUIRE(c.send_raw(std::string("?\0\0\0\4", 5)));
        expect_error_and_close(c);
    }
    SECTION("malformed core message") {
        PushClient c;
        REQUIRE(c.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
        REQUIRE(c.start_wal_push());
        REQUIRE(c.send_raw(std::string("d\0\0\0\7G\1\2", 8)));
        expect_error_and_close(c);
    }
    SECTION("append before greeting") {
        PushClient c;
        REQUIRE(c.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
        REQUIRE(c.start_wal_push());
        REQUIRE(c.send(VoteRequest{5}));
        REQUIRE(c.flush());
        expect_error_and_close(c);
    }
    SECTION("peer hangs up in the middle of a message") {
        PushClient c;
        REQUIRE(c.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
        REQUIRE(c.start_wal_push());
        REQUIRE(c.send_raw(std::string("d\0\1\0\0partial", 12)));
        c.close();
        // The daemon notices and closes its side: the timeline has no
        // streaming proposer afterwards (bounded wait).
        bool gone = false;
        for (int i = 0; i < 200 && !gone; ++i) {
            gone = http_get(d.http_port(), "/v1/status").find("\"active_connections\":1") !=
                   std::string::npos;
            if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        CHECK(gone);
    }
    SECTION("unknown command and missing ids") {
        PushClient c;
        REQUIRE(c.connect("127.0.0.1", d.pg_port(), {}));
        auto e = c.simple_query("SELECT 1");
        REQUIRE(e);
        CHECK_THAT(*e, Catch::Contains("0A000"));
        auto e2 = c.simple_query("START_WAL_PUSH");
        REQUIRE(e2);
        CHECK_THAT(*e2, Catch::Contains("tenant_id"));
        CHECK(c.simple_query(""));
    }
    // Whatever happened above, the session that was open keeps streaming
    // and the daemon still serves a new full session.
    REQUIRE(d.alive());
    const Lsn live_acked2 = stream(live, 1, live_gen, 100000);
    CHECK(live_acked2 == live_gen.position());
    PushClient ok;
    REQUIRE(ok.connect("127.0.0.1", d.pg_port(), options_for(make_id(0x70), make_id(0x71))));
    become_proposer(ok, make_id(0x70), make_id(0x71), 1, {{1, kStart}});
    WalGenerator gen(kSysId, kSeg, 1, kStart);
    const Lsn r = stream(ok, 1, gen, 200000);
    CHECK(r == gen.position());
}

TEST_CASE("daemon: a corrupt control file disables only that timeline", "[sk][daemon]") {
    const std::string dir = temp_dir();
    Daemon d(dir);
    d.start();
    const Id128 tenant = make_id(0x81), good = make_id(0x82), bad = make_id(0x83);
    for (const Id128& tl : {good, bad}) {
        PushClient c;
        REQUIRE(c.connect("127.0.0.1", d.pg_port(), options_for(tenant, tl)));
        become_proposer(c, tenant, tl, 1, {{1, kStart}});
        WalGenerator gen(kSysId, kSeg, 1, kStart);
        stream(c, 1, gen, 100000);
    }
    d.kill(SIGTERM);
    const std::string control =
        dir + "/" + format_id(tenant) + "/" + format_id(bad) + "/safekeeper.control";
    std::string expected_error;
    SECTION("bad CRC") {
        auto f = real_file_system().open(control, OpenMode::kReadWrite);
        REQUIRE(f);
        REQUIRE((*f)->pwrite_all("X", 1, 30));
        expected_error = "CRC mismatch";
    }
    SECTION("unknown format version") {
        auto f = real_file_system().open(control, OpenMode::kReadWrite);
        REQUIRE(f);
        REQUIRE((*f)->pwrite_all("\x63\0\0\0", 4, 4));  // version 99
        expected_error = "unknown format version 99";
    }
    auto before = read_whole_file(real_file_system(), control);
    REQUIRE(before);
    d.start();
    const std::string st =
        http_get(d.http_port(), "/v1/tenant/" + format_id(tenant) + "/timeline/" + format_id(bad));
    CHECK_THAT(st, Catch::Contains("\"state\":\"broken\""));
    CHECK_THAT(st, Catch::Contains(expected_error));
    PushClient c;
    REQUIRE(c.connect("127.0.0.1", d.pg_port(), options_for(tenant, bad)));
    CHECK_FALSE(c.start_wal_push());
    auto after = read_whole_file(real_file_system(), control);
    REQUIRE(after);
    CHECK(*after == *before);  // refused, and nothing was overwritten
    PushClient c2;
    REQUIRE(c2.connect("127.0.0.1", d.pg_port(), options_for(tenant, good)));
    REQUIRE(c2.start_wal_push());
    REQUIRE(c2.send(sk_test::greeting(kSysId, kSeg, tenant, good)));
    CHECK(c2.receive());
    // DELETE removes the broken timeline.
    httplib::Client cli("127.0.0.1", d.http_port());
    auto res =
        cli.Delete(("/v1/tenant/" + format_id(tenant) + "/timeline/" + format_id(bad)).c_str());
    REQUIRE(res);
    INFO(res->body);
    CHECK(res->status == 200);
    CHECK_FALSE(real_file_system().exists(control));
}

TEST_CASE("daemon: a stalled proposer on one timeline does not slow another", "[sk][daemon]") {
    const std::string dir = temp_dir();
    Daemon d(dir);
    d.start();
    const Id128 tenant = make_id(0x91), stalled_tl = make_id(0x92), busy_tl = make_id(0x93);
    // The stalled proposer: elected, then sends the first half of an
    // AppendRequest and goes silent with the connection open.
    PushClient stalled;
    REQUIRE(stalled.connect("127.0.0.1", d.pg_port(), options_for(tenant, stalled_tl)));
    become_proposer(stalled, tenant, stalled_tl, 1, {{1, kStart}});
    WalGenerator stalled_gen(kSysId, kSeg, 1, kStart);
    const Lsn stalled_acked = stream(stalled, 1, stalled_gen, 100000);
    REQUIRE(stalled_acked == stalled_gen.position());
    REQUIRE(stalled.send_raw(std::string("d\0\2\0\0", 5) + std::string(1000, 'A')));
    // Another timeline streams at full speed meanwhile, and the HTTP API
    // still answers for the stalled one.
    PushClient busy;
    REQUIRE(busy.connect("127.0.0.1", d.pg_port(), options_for(tenant, busy_tl)));
    become_proposer(busy, tenant, busy_tl, 1, {{1, kStart}});
    WalGenerator busy_gen(kSysId, kSeg, 1, kStart);
    const auto t0 = std::chrono::steady_clock::now();
    const Lsn acked = stream(busy, 1, busy_gen, 4 * kSeg);
    const auto elapsed = std::chrono::steady_clock::now() - t0;
    CHECK(acked == busy_gen.position());
    CHECK(elapsed < std::chrono::seconds(30));
    const std::string st = http_get(
        d.http_port(), "/v1/tenant/" + format_id(tenant) + "/timeline/" + format_id(stalled_tl));
    CHECK_THAT(st, Catch::Contains("\"flush_lsn\":\"" + format_lsn(stalled_gen.position()) + "\""));
    CHECK_THAT(st, Catch::Contains("\"proposer\":{"));
}

TEST_CASE("daemon: DELETE of a streaming timeline is refused unless forced; the term survives it",
          "[sk][daemon][tombstone]") {
    const std::string dir = temp_dir();
    Daemon d(dir);
    d.start();
    const Id128 tenant = make_id(0xA1), timeline = make_id(0xA2);
    const std::string path = "/v1/tenant/" + format_id(tenant) + "/timeline/" + format_id(timeline);
    PushClient c;
    REQUIRE(c.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
    become_proposer(c, tenant, timeline, 3, {{3, kStart}});
    WalGenerator gen(kSysId, kSeg, 1, kStart);
    stream(c, 3, gen, 100000);
    httplib::Client cli("127.0.0.1", d.http_port());
    auto refused = cli.Delete(path.c_str());
    REQUIRE(refused);
    INFO(refused->body);
    CHECK(refused->status == 409);
    CHECK_THAT(refused->body, Catch::Contains("\"error\"") && Catch::Contains("force=true"));
    CHECK_THAT(http_get(d.http_port(), path), Catch::Contains("\"state\":\"active\""));
    auto forced = cli.Delete((path + "?force=true").c_str());
    REQUIRE(forced);
    CHECK(forced->status == 200);
    CHECK(real_file_system().exists(dir + "/" + format_id(tenant) + "/" + format_id(timeline) +
                                    ".tombstone"));
    c.close();
    // The next proposer recreates the timeline: it starts at term 3, so it
    // cannot vote in term 3 a second time.
    PushClient c2;
    REQUIRE(c2.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
    REQUIRE(c2.start_wal_push());
    REQUIRE(c2.send(sk_test::greeting(kSysId, kSeg, tenant, timeline)));
    auto g = c2.receive();
    REQUIRE(g);
    CHECK(std::get<AcceptorGreeting>(*g).term == 3);
    REQUIRE(c2.send(VoteRequest{3}));
    auto v3 = c2.receive();
    REQUIRE(v3);
    CHECK_FALSE(std::get<VoteResponse>(*v3).vote_granted);
    REQUIRE(c2.send(VoteRequest{4}));
    auto v4 = c2.receive();
    REQUIRE(v4);
    CHECK(std::get<VoteResponse>(*v4).vote_granted);
}

TEST_CASE("daemon: a sync proposer fences, gets elected and reads the donor's WAL",
          "[sk][daemon][failover]") {
    const std::string dir = temp_dir();
    Daemon d(dir);
    d.start();
    const Id128 tenant = make_id(0xB1), timeline = make_id(0xB2);
    WalGenerator gen(kSysId, kSeg, 1, kStart);
    const std::vector<std::uint8_t> wal = gen.append_bytes(300000, 7000);
    {
        PushClient p;
        REQUIRE(p.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
        become_proposer(p, tenant, timeline, 1, {{1, kStart}});
        REQUIRE(append_all(p, 1, kStart, wal) == gen.position());
    }
    const Lsn end = gen.position();

    PushClient s;
    REQUIRE(s.connect("127.0.0.1", d.pg_port(), sync_options_for(tenant, timeline)));
    AcceptorGreeting ag;
    const VoteResponse v = greet_and_vote(s, sync_greeting(tenant, timeline), 2, 2, &ag);
    // The sync proposer learns the identity from the greeting.
    CHECK(ag.system_id == kSysId);
    CHECK(ag.wal_segment_size == kSeg);
    CHECK(ag.pg_timeline == 1);
    CHECK(ag.min_pg_timeline == 0);
    REQUIRE(v.vote_granted);
    CHECK(v.flush_lsn == end);
    CHECK(announce_elected(s, 2, {{1, kStart}, {2, end}}, end) == end);

    // The donor's WAL, in two reads.
    const Lsn mid = kStart + 12345;
    REQUIRE(s.send(WalReadRequest{2, kStart, mid}));
    REQUIRE(s.send(WalReadRequest{2, mid, end}));
    std::vector<std::uint8_t> read;
    for (Lsn at : {kStart, mid}) {
        auto r = s.receive();
        REQUIRE(r);
        REQUIRE(std::holds_alternative<WalReadResponse>(*r));
        const auto& resp = std::get<WalReadResponse>(*r);
        CHECK(resp.term == 2);
        CHECK(resp.begin_lsn == at);
        read.insert(read.end(), resp.wal.begin(), resp.wal.end());
    }
    CHECK(read == wal);

    // Appends followed by a read in one write: the daemon may take them in
    // one batch, and still answers in order, the read seeing the appends.
    const std::vector<std::uint8_t> more = gen.append_bytes(200000, 7000);
    const std::size_t n = queue_appends(s, 2, end, more);
    REQUIRE(s.send(WalReadRequest{2, end, gen.position()}));
    for (std::size_t i = 0; i < n; ++i) {
        auto r = s.receive();
        REQUIRE(r);
        REQUIRE(std::holds_alternative<AppendResponse>(*r));
    }
    auto r = s.receive();
    REQUIRE(r);
    REQUIRE(std::holds_alternative<WalReadResponse>(*r));
    CHECK(std::get<WalReadResponse>(*r).wal == more);

    // The sync proposer adopted nothing: PG timeline 1, fence 2.
    const std::string tl = http_get(
        d.http_port(), "/v1/tenant/" + format_id(tenant) + "/timeline/" + format_id(timeline));
    CHECK_THAT(tl, Catch::Contains("\"pg_timeline\":1"));
    CHECK_THAT(tl, Catch::Contains("\"min_pg_timeline\":2"));
    CHECK_THAT(tl, Catch::Contains("\"system_id\":\"" + std::to_string(kSysId) + "\""));
    const std::string metrics = http_get(d.http_port(), "/metrics");
    CHECK_THAT(metrics,
               Catch::Contains("safekeeper_min_pg_timeline{tenant_id=\"" + format_id(tenant) +
                               "\",timeline_id=\"" + format_id(timeline) + "\"} 2"));
}

TEST_CASE("daemon: the fence refuses the old primary, also after a restart",
          "[sk][daemon][failover]") {
    const std::string dir = temp_dir();
    Daemon d(dir);
    d.start();
    const Id128 tenant = make_id(0xC1), timeline = make_id(0xC2);
    WalGenerator gen(kSysId, kSeg, 1, kStart);
    Lsn end = 0;
    {
        PushClient p;
        REQUIRE(p.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
        become_proposer(p, tenant, timeline, 1, {{1, kStart}});
        end = append_all(p, 1, kStart, gen.append_bytes(100000, 7000));
        REQUIRE(end == gen.position());
    }
    {
        // The failover tool's vote raises the fence to PostgreSQL timeline 2.
        PushClient s;
        REQUIRE(s.connect("127.0.0.1", d.pg_port(), sync_options_for(tenant, timeline)));
        CHECK(greet_and_vote(s, sync_greeting(tenant, timeline), 2, 2).vote_granted);
    }
    // The old primary (PostgreSQL timeline 1) sees the fence in the greeting;
    // a vote only promises a term, and its election is refused.
    auto old_primary_is_fenced = [&](Term term) {
        PushClient p;
        REQUIRE(p.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
        AcceptorGreeting ag;
        CHECK(greet_and_vote(p, sk_test::greeting(kSysId, kSeg, tenant, timeline), term, 0, &ag)
                  .vote_granted);
        CHECK(ag.min_pg_timeline == 2);
        CHECK(ag.pg_timeline == 1);
        const std::string error = elected_refused(p, term, {{1, kStart}, {term, end}}, end);
        CHECK_THAT(error, Catch::Contains("fenced"));
        CHECK_THAT(error, Catch::Contains("42501"));
    };
    old_primary_is_fenced(3);
    // The fence is durable: it survives a SIGKILL and restart.
    d.kill(SIGKILL);
    d.start();
    const std::string path = "/v1/tenant/" + format_id(tenant) + "/timeline/" + format_id(timeline);
    CHECK_THAT(http_get(d.http_port(), path), Catch::Contains("\"min_pg_timeline\":2"));
    old_primary_is_fenced(4);
    // The promoted node (PostgreSQL timeline 2) is elected as usual.
    PushClient promoted;
    REQUIRE(promoted.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
    ProposerGreeting g = sk_test::greeting(kSysId, kSeg, tenant, timeline);
    g.pg_timeline = 2;
    g.pg_timeline_history = "1\t" + format_lsn(end) + "\tno recovery target specified\n";
    REQUIRE(greet_and_vote(promoted, g, 5).vote_granted);
    CHECK(announce_elected(promoted, 5, {{1, kStart}, {5, end}}, end) == end);
    const std::string tl = http_get(d.http_port(), path);
    CHECK_THAT(tl, Catch::Contains("\"pg_timeline\":2"));
    CHECK_THAT(tl, Catch::Contains("\"min_pg_timeline\":2"));
}

TEST_CASE("daemon: create_timeline=false never creates a timeline", "[sk][daemon][failover]") {
    const std::string dir = temp_dir();
    Daemon d(dir);
    d.start();
    const Id128 tenant = make_id(0xD1), timeline = make_id(0xD2);
    const std::string tl_dir = dir + "/" + format_id(tenant) + "/" + format_id(timeline);
    {
        PushClient c;
        REQUIRE(c.connect("127.0.0.1", d.pg_port(), sync_options_for(tenant, timeline)));
        auto e = c.simple_query("START_WAL_PUSH");
        REQUIRE(e);
        CHECK_THAT(*e, Catch::Contains("42704"));
        CHECK_THAT(*e, Catch::Contains("timeline " + format_id(tenant) + "/" + format_id(timeline) +
                                       " does not exist on this safekeeper"));
        // The session goes on.
        CHECK(c.simple_query(""));
    }
    CHECK_FALSE(real_file_system().exists(tl_dir));
    CHECK_THAT(http_get(d.http_port(), "/v1/status"), Catch::Contains("\"timelines\":0"));
    SECTION("a bad value is refused at startup") {
        for (const char* bad : {"maybe", "", "2"}) {
            INFO(bad);
            PushClient c;
            auto o = options_for(tenant, timeline);
            o["options"] += std::string(" -c create_timeline=") + bad;
            const wp::Status s = c.connect("127.0.0.1", d.pg_port(), o);
            REQUIRE_FALSE(s);
            CHECK_THAT(s.message(), Catch::Contains("create_timeline"));
        }
    }
    SECTION("true, and the default, create it; false then finds it") {
        PushClient c;
        auto o = options_for(tenant, timeline);
        o["options"] += " -c create_timeline=true";
        REQUIRE(c.connect("127.0.0.1", d.pg_port(), o));
        become_proposer(c, tenant, timeline, 1, {{1, kStart}});
        CHECK(real_file_system().exists(tl_dir));
        PushClient s;
        REQUIRE(s.connect("127.0.0.1", d.pg_port(), sync_options_for(tenant, timeline)));
        REQUIRE(s.start_wal_push());
    }
}

TEST_CASE("daemon: a WalReadRequest outside the WAL is an error for that connection only",
          "[sk][daemon][failover]") {
    const std::string dir = temp_dir();
    Daemon d(dir);
    d.start();
    const Id128 tenant = make_id(0xE1), timeline = make_id(0xE2);
    WalGenerator gen(kSysId, kSeg, 1, kStart);
    PushClient p;
    REQUIRE(p.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
    become_proposer(p, tenant, timeline, 1, {{1, kStart}});
    const Lsn end = append_all(p, 1, kStart, gen.append_bytes(100000, 7000));
    REQUIRE(end == gen.position());

    PushClient s;
    REQUIRE(s.connect("127.0.0.1", d.pg_port(), sync_options_for(tenant, timeline)));
    REQUIRE(greet_and_vote(s, sync_greeting(tenant, timeline), 2, 2).vote_granted);
    REQUIRE(announce_elected(s, 2, {{1, kStart}, {2, end}}, end) == end);
    SECTION("beyond the end") {
        REQUIRE(s.send(WalReadRequest{2, end - 100, end + 100}));
    }
    SECTION("below the start") {
        REQUIRE(s.send(WalReadRequest{2, kStart - 100, kStart + 100}));
    }
    auto r = s.receive();
    REQUIRE_FALSE(r);
    CHECK_THAT(r.status().message(), Catch::Contains("outside the WAL held here"));
    CHECK(closed_by_peer_within(s.fd(), 10000));

    // The daemon keeps serving: the WAL is still there, another timeline streams.
    REQUIRE(d.alive());
    PushClient s2;
    REQUIRE(s2.connect("127.0.0.1", d.pg_port(), sync_options_for(tenant, timeline)));
    AcceptorGreeting ag;
    REQUIRE(greet_and_vote(s2, sync_greeting(tenant, timeline), 3, 2, &ag).vote_granted);
    CHECK(ag.flush_lsn == end);
    PushClient other;
    REQUIRE(other.connect("127.0.0.1", d.pg_port(), options_for(tenant, make_id(0xE3))));
    become_proposer(other, tenant, make_id(0xE3), 1, {{1, kStart}});
    WalGenerator gen2(kSysId, kSeg, 1, kStart);
    const Lsn acked = stream(other, 1, gen2, 200000);
    CHECK(acked == gen2.position());
}

TEST_CASE("daemon: a configuration update is durable, shown, and stale votes are refused",
          "[sk][daemon][membership]") {
    const std::string dir = temp_dir();
    Daemon d(dir);
    d.start();
    const Id128 tenant = make_id(0xD1), timeline = make_id(0xD2);
    Configuration c;
    c.generation = 3;
    c.created_term = 1;
    c.members = {{7, {"127.0.0.1", d.pg_port()}}, {8, {"sk8", 5454}}, {9, {"sk9", 5454}}};
    c.new_members = MemberSet{{7, {"127.0.0.1", d.pg_port()}}, {8, {"sk8", 5454}}, {10, {"sk10", 5454}}};
    {
        PushClient p;
        REQUIRE(p.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
        become_proposer(p, tenant, timeline, 1, {{1, kStart}});
        REQUIRE(p.send(ConfigurationUpdate{1, c}));
        auto r = p.receive();
        REQUIRE(r);
        REQUIRE(std::holds_alternative<AppendResponse>(*r));
        CHECK(std::get<AppendResponse>(*r).generation == 3);
    }
    const std::string path = "/v1/tenant/" + format_id(tenant) + "/timeline/" + format_id(timeline);
    CHECK_THAT(http_get(d.http_port(), path), Catch::Contains("\"generation\":3"));
    CHECK_THAT(http_get(d.http_port(), path), Catch::Contains("\"address\":\"sk10:5454\""));
    // Durable: after a crash the control file still holds it.
    d.kill(SIGKILL);
    d.start();
    CHECK_THAT(http_get(d.http_port(), path), Catch::Contains("\"new_members\":[{"));
    CHECK_THAT(http_get(d.http_port(), "/metrics"),
               Catch::Contains("safekeeper_configuration_generation{tenant_id=\"" + format_id(tenant) +
                               "\",timeline_id=\"" + format_id(timeline) + "\"} 3"));
    // A proposer of an older configuration: greeted with the newer one, its
    // vote refused with the reason, the term unchanged.
    PushClient old;
    REQUIRE(old.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
    AcceptorGreeting ag;
    const VoteResponse v = greet_and_vote(old, sk_test::greeting(kSysId, kSeg, tenant, timeline), 5, 0, &ag);
    CHECK(ag.configuration == c);
    CHECK_FALSE(v.vote_granted);
    CHECK(v.term == 1);
    CHECK_THAT(v.refusal, Catch::StartsWith("stale configuration"));
}

namespace {

// Elects a proposer of `term` on `c` (a safekeeper of node `id`) with
// configuration `config`, its history starting at kStart.
void elect_with_configuration(PushClient& c, NodeId id, const Id128& tenant, const Id128& timeline,
                              Term term, const Configuration& config) {
    REQUIRE(c.start_wal_push());
    REQUIRE(c.send(sk_test::greeting(kSysId, kSeg, tenant, timeline)));
    auto greeted = c.receive();
    REQUIRE(greeted);
    REQUIRE(std::get<AcceptorGreeting>(*greeted).node_id == id);
    VoteRequest v{term};
    v.configuration = config.key();
    REQUIRE(c.send(v));
    auto vote = c.receive();
    REQUIRE(vote);
    REQUIRE(std::get<VoteResponse>(*vote).vote_granted);
    ProposerElected e{term, kStart, {{term, kStart}}, config};
    REQUIRE(c.send(e));
    auto r = c.receive();
    REQUIRE(r);
    REQUIRE(std::get<AppendResponse>(*r).flush_lsn == kStart);
}

// Appends `wal` at `begin` (generation `gen`, commit_lsn `commit`) and waits
// for every answer.
void append_with_generation(PushClient& c, Term term, Lsn begin, const std::vector<std::uint8_t>& wal,
                            Lsn commit, Generation generation) {
    std::size_t n = 0;
    for (std::size_t off = 0; off < wal.size(); off += 128 * 1024, ++n) {
        AppendRequest a = append_piece(term, begin, wal, off, 128 * 1024);
        a.commit_lsn = commit;
        a.generation = generation;
        REQUIRE(c.send(a));
    }
    AppendRequest beat;  // carries the commit_lsn of everything sent
    beat.term = term;
    beat.begin_lsn = beat.end_lsn = begin + wal.size();
    beat.commit_lsn = commit;
    beat.generation = generation;
    REQUIRE(c.send(beat));
    for (std::size_t i = 0; i <= n; ++i) {
        auto r = c.receive();
        REQUIRE(r);
        REQUIRE(std::get<AppendResponse>(*r).term == term);
    }
}

std::string read_file_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_CASE("daemon: a member that was away takes the committed WAL from its peer",
          "[sk][daemon][recovery]") {
    Daemon a(temp_dir(), 1), b(temp_dir(), 2);
    a.start();
    b.start();
    const Id128 tenant = make_id(0xE1), timeline = make_id(0xE2);
    Configuration config;
    config.generation = 1;
    config.created_term = 1;
    config.members = {{1, {"127.0.0.1", a.pg_port()}}, {2, {"127.0.0.1", b.pg_port()}}};
    WalGenerator gen(kSysId, kSeg, 1, kStart, kInvalidLsn);
    const std::vector<std::uint8_t> first = gen.append_bytes(3 * kSeg / 2, 7000);
    const Lsn first_end = kStart + first.size();
    {
        PushClient pb;
        REQUIRE(pb.connect("127.0.0.1", b.pg_port(), options_for(tenant, timeline)));
        elect_with_configuration(pb, 2, tenant, timeline, 1, config);
        append_with_generation(pb, 1, kStart, first, kStart, 1);
    }  // b's proposer connection ends: b is left behind
    PushClient pa;
    REQUIRE(pa.connect("127.0.0.1", a.pg_port(), options_for(tenant, timeline)));
    elect_with_configuration(pa, 1, tenant, timeline, 1, config);
    const std::vector<std::uint8_t> second = gen.append_bytes(4 * kSeg, 7000);
    std::vector<std::uint8_t> all = first;
    all.insert(all.end(), second.begin(), second.end());
    const Lsn end = kStart + all.size();
    append_with_generation(pa, 1, kStart, all, first_end, 1);
    append_with_generation(pa, 1, end, {}, end, 1);  // a learns that all of it is committed
    pa.close();

    // b takes [first_end, end) from a: bounded wait on its status.
    const std::string path = "/v1/tenant/" + format_id(tenant) + "/timeline/" + format_id(timeline);
    auto status_of = [&](Daemon& d) {
        const std::string body = http_get(d.http_port(), path);
        return body.empty() ? nlohmann::json::object() : nlohmann::json::parse(body);
    };
    bool caught_up = false;
    for (int i = 0; i < 300 && !caught_up; ++i) {
        const nlohmann::json st = status_of(b);
        caught_up = st.value("flush_lsn", "") == format_lsn(end) &&
                    st["peer_recovery"].value("active", true) == false;
        if (!caught_up) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    REQUIRE(caught_up);
    const nlohmann::json status = status_of(b);
    CHECK(status["commit_lsn"] == format_lsn(end));
    CHECK(status["peer_recovery"]["recoveries"] == 1);
    CHECK(status["peer_recovery"]["peer"] == 1);
    CHECK_THAT(http_get(b.http_port(), "/metrics"),
               Catch::Contains("safekeeper_peer_recovered_bytes_total{tenant_id=\"" +
                               format_id(tenant) + "\",timeline_id=\"" + format_id(timeline) +
                               "\"} " + std::to_string(end - first_end)));
    // Byte for byte the same WAL on both, segment by segment.
    const std::string rel = "/" + format_id(tenant) + "/" + format_id(timeline) + "/";
    for (Lsn seg = kStart; seg < end; seg += kSeg) {
        char name[32];
        std::snprintf(name, sizeof name, "%08X%08X%08X", 1u, static_cast<unsigned>(seg / kSeg / 4096),
                      static_cast<unsigned>(seg / kSeg % 4096));
        const bool last = seg + kSeg >= end;
        const std::string file = std::string(name) + (last ? ".partial" : "");
        const std::string wa = read_file_bytes(a.dir() + rel + file);
        const std::string wb = read_file_bytes(b.dir() + rel + file);
        REQUIRE(wa.size() == kSeg);
        CHECK(wa == wb);
    }
    // And it survives a restart (the recovered WAL decodes, nothing is lost).
    b.kill(SIGKILL);
    b.start();
    CHECK(status_of(b)["flush_lsn"] == format_lsn(end));
}

TEST_CASE("daemon: tells systemd when it is ready and stopping; SIGHUP does not stop it",
          "[sk][daemon][systemd]") {
    // A stand-in for systemd's notification socket (Type=notify).
    char tmpl[] = "/tmp/sk_notify_XXXXXX";
    REQUIRE(::mkdtemp(tmpl));
    const std::string path = std::string(tmpl) + "/notify";
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    auto receive = [fd](int timeout_ms) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, timeout_ms) <= 0) return std::string();
        char buf[1024];
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
    };
    ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
    Daemon d(temp_dir());
    d.start();
    ::unsetenv("NOTIFY_SOCKET");
    CHECK_THAT(receive(10000), Catch::Contains("READY=1"));
    // SIGHUP (systemctl reload, log rotation): logged, still serving.
    REQUIRE(d.pid() > 0);
    ::kill(d.pid(), SIGHUP);
    bool logged = false;
    for (int i = 0; i < 100 && !logged; ++i) {
        logged = read_file_bytes(d.dir() + ".log").find("received SIGHUP") != std::string::npos;
        if (!logged) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    CHECK(logged);
    CHECK(d.alive());
    CHECK_THAT(http_get(d.http_port(), "/v1/status"), Catch::Contains("\"timelines\""));
    // SIGTERM: STOPPING=1, then a clean exit.
    const int status = d.kill(SIGTERM);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK_THAT(receive(5000), Catch::Contains("STOPPING=1"));
    ::close(fd);
}

TEST_CASE("daemon: clients that stall in the startup or inside a message are closed after the "
          "time limits, and the proposer is served meanwhile",
          "[sk][daemon][limits]") {
    Daemon d(temp_dir(), 7, {"--startup-timeout-ms=1500", "--message-timeout-ms=1500"});
    d.start();
    auto raw_connect = [&d]() {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(d.pg_port());
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        return fd;
    };
    // 200 clients send half a startup packet (its length only) and stall.
    std::vector<int> stalled;
    for (int i = 0; i < 200; ++i) {
        const int fd = raw_connect();
        const char half[4] = {0, 0, 0, 40};
        REQUIRE(::send(fd, half, sizeof half, MSG_NOSIGNAL) == 4);
        stalled.push_back(fd);
    }
    // A proposer is served as usual meanwhile.
    const Id128 tenant = make_id(0xF1), timeline = make_id(0xF2);
    PushClient p;
    REQUIRE(p.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
    become_proposer(p, tenant, timeline, 1, {{1, kStart}});
    CHECK(append_all(p, 1, kStart, std::vector<std::uint8_t>(100000, 7)) == kStart + 100000);
    // A client that finished its startup, then sends part of a query.
    PushClient partial;
    REQUIRE(partial.connect("127.0.0.1", d.pg_port(), {}));
    REQUIRE(partial.send_raw(std::string("Q\0\0\0\x64SEL", 8)));
    // All of them are closed after their limit (1.5 s); the daemon says why.
    const auto began = std::chrono::steady_clock::now();
    int closed = 0;
    for (int fd : stalled) {
        if (closed_by_peer_within(fd, 10000)) ++closed;
        ::close(fd);
    }
    CHECK(closed == 200);
    char type = 0;
    std::string payload;
    REQUIRE(partial.read_backend_message(type, payload));
    CHECK(type == 'E');
    CHECK_THAT(payload, Catch::Contains("time limit"));
    CHECK(std::chrono::steady_clock::now() - began < std::chrono::seconds(10));
    // The proposer's stream is still up.
    CHECK(append_all(p, 1, kStart + 100000, std::vector<std::uint8_t>(1000, 8)) == kStart + 101000);
    CHECK_THAT(read_file_bytes(d.dir() + ".log"), Catch::Contains("startup packet within the time limit"));
    // The HTTP API refuses a request body beyond its limit before reading it.
    httplib::Client cli("127.0.0.1", d.http_port());
    auto big = cli.Post(("/v1/tenant/" + format_id(tenant) + "/timeline/" + format_id(timeline) +
                         "/pull_timeline")
                            .c_str(),
                        std::string(1 << 20, 'x'), "application/json");
    REQUIRE(big);
    CHECK(big->status == 413);
    CHECK(d.alive());
    CHECK_THAT(http_get(d.http_port(), "/v1/status"), Catch::Contains("\"timelines\""));
}

TEST_CASE("daemon: SCRAM authentication with our own client; before it, messages are small",
          "[sk][daemon][auth]") {
    const std::string dir = temp_dir();
    const std::string roles = dir + ".roles";
    std::ofstream(roles) << "reader read * "
                         << format_scram_secret(*make_scram_secret("right password")) << "\n";
    const int pg_port = sk_test::free_port(), http_port = sk_test::free_port();
    const pid_t pid =
        sk_test::spawn_safekeeper(dir, 5, pg_port, http_port, "", {"--roles-file", roles});
    // Ready once our client authenticates (it checks the server's signature too).
    ClientCredentials right{"reader", "right password", ""};
    bool ready = false;
    for (int i = 0; i < 250 && !ready; ++i) {
        PgClient c;
        ready = c.connect("127.0.0.1", pg_port, {}, std::chrono::milliseconds(2000), right).ok();
        if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    REQUIRE(ready);
    PgClient good;
    REQUIRE(good.connect("127.0.0.1", pg_port, {}, std::chrono::milliseconds(2000), right).ok());
    CHECK(*good.query_value("SHOW safekeeper_node_id") == "5");

    PgClient wrong;
    Status refused = wrong.connect("127.0.0.1", pg_port, {}, std::chrono::milliseconds(2000),
                                   {"reader", "wrong password", ""});
    REQUIRE_FALSE(refused.ok());
    CHECK_THAT(refused.message(), Catch::Contains("28P01 password authentication failed"));
    PgClient none;
    Status no_password = none.connect("127.0.0.1", pg_port, {}, std::chrono::milliseconds(2000));
    REQUIRE_FALSE(no_password.ok());
    CHECK_THAT(no_password.message(), Catch::Contains("asks for a password"));

    // An unauthenticated client announces a 1 MB SASL message: refused at
    // once, nothing buffered.
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(pg_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    const std::string startup = encode_startup_packet({{"user", "reader"}});
    REQUIRE(::send(fd, startup.data(), startup.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(startup.size()));
    const char big[5] = {'p', 0, 0x10, 0, 0};  // length 1 MB
    REQUIRE(::send(fd, big, sizeof big, MSG_NOSIGNAL) == 5);
    std::string reply;
    char buf[4096];
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        REQUIRE(::poll(&p, 1, 10000) == 1);
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;  // closed by the daemon
        reply.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    CHECK_THAT(reply, Catch::Contains("exceeds the limit of 65535 bytes"));

    ::kill(pid, SIGTERM);
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("daemon: GET /v1/timelines lists every timeline", "[sk][daemon][http]") {
    Daemon d(temp_dir());
    d.start();
    const Id128 tenant = make_id(0xA1);
    std::vector<PushClient> clients(3);
    for (int i = 0; i < 3; ++i) {
        const Id128 timeline = make_id(static_cast<std::uint8_t>(0xB1 + i));
        REQUIRE(clients[i].connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
        become_proposer(clients[i], tenant, timeline, 1, {{1, kStart}});
    }
    const nlohmann::json j = nlohmann::json::parse(http_get(d.http_port(), "/v1/timelines"));
    REQUIRE(j["timelines"].size() == 3);
    std::set<std::string> ids;
    for (const auto& t : j["timelines"]) {
        CHECK(t["tenant_id"] == format_id(tenant));
        CHECK(t["state"] == "active");
        CHECK(t["term"] == 1);
        CHECK(t["proposer_connected"] == true);
        CHECK(t.contains("flush_lsn"));
        CHECK(t.contains("commit_lsn"));
        ids.insert(t["timeline_id"].get<std::string>());
    }
    CHECK(ids == std::set<std::string>{format_id(make_id(0xB1)), format_id(make_id(0xB2)),
                                       format_id(make_id(0xB3))});
}

namespace {

// The soft and hard open-file limits of process `pid` (/proc/PID/limits).
std::pair<std::string, std::string> open_file_limits(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/limits");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("Max open files", 0) != 0) continue;
        std::istringstream fields(line.substr(std::strlen("Max open files")));
        std::string soft, hard;
        fields >> soft >> hard;
        return {soft, hard};
    }
    return {};
}

// A wrapper that starts build/safekeeper (or $WP_SAFEKEEPER_BIN) under the
// open-file limits `ulimit_args` sets.
std::string limited_safekeeper(const std::string& dir, const std::string& ulimit_args) {
    const char* bin = std::getenv("WP_SAFEKEEPER_BIN");
    char real[PATH_MAX];
    const std::string binary = bin ? bin : "build/safekeeper";
    REQUIRE(::realpath(binary.c_str(), real) != nullptr);
    const std::string path = dir + "-limited.sh";
    std::ofstream(path) << "#!/bin/sh\n" << ulimit_args << " || exit 99\nexec " << real << " \"$@\"\n";
    ::chmod(path.c_str(), 0755);
    return path;
}

}  // namespace

TEST_CASE("daemon: raises its open-file soft limit to the hard limit and says so",
          "[sk][daemon]") {
    const std::string dir = temp_dir();
    Daemon d(dir);
    d.start(limited_safekeeper(dir, "ulimit -Sn 256 && ulimit -Hn 8192"));
    const auto [soft, hard] = open_file_limits(d.pid());
    CHECK(hard == "8192");
    CHECK(soft == "8192");
    CHECK_THAT(read_file_bytes(dir + ".log"), Catch::Contains("open-file limit raised from 256 to 8192"));
}

TEST_CASE("daemon: warns when its open-file limit stays low", "[sk][daemon]") {
    const std::string dir = temp_dir();
    Daemon d(dir);
    d.start(limited_safekeeper(dir, "ulimit -Sn 512 && ulimit -Hn 1024"));
    CHECK(open_file_limits(d.pid()).first == "1024");
    const std::string log = read_file_bytes(dir + ".log");
    CHECK_THAT(log, Catch::Contains("open-file limit is 1024 (hard limit 1024)"));
    CHECK_THAT(log, Catch::Contains("LimitNOFILE="));
}

TEST_CASE("daemon: a timeline it cannot create for lack of file descriptors is refused with "
          "the reason",
          "[sk][daemon]") {
    const std::string dir = temp_dir();
    Daemon d(dir);
    d.start(limited_safekeeper(dir, "ulimit -Sn 40 && ulimit -Hn 40"));
    const Id128 tenant = make_id(0xC1);
    std::string refusal;
    int created = 0;
    // Idle timelines hold no descriptor, so the connections stay open to use
    // them up.
    std::vector<std::unique_ptr<PushClient>> clients;
    for (int i = 0; i < 40 && refusal.empty(); ++i) {
        clients.push_back(std::make_unique<PushClient>());
        PushClient& c = *clients.back();
        const Id128 timeline = make_id(static_cast<std::uint8_t>(0x10 + i));
        REQUIRE(c.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
        timeval limit{10, 0};  // a hang fails the test instead of stalling it
        ::setsockopt(c.fd(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
        std::string q = "Q";
        q.append({0, 0, 0, static_cast<char>(4 + 15)});
        q += "START_WAL_PUSH";
        q.push_back('\0');
        REQUIRE(c.send_raw(q));
        char type = 0;
        std::string payload;
        REQUIRE(c.read_backend_message(type, payload));
        if (type == 'E')
            refusal = payload;
        else
            ++created;
    }
    INFO("created " << created << " timelines before the refusal");
    REQUIRE_FALSE(refusal.empty());
    CHECK(created > 0);
    // ErrorResponse fields: C<code>\0 ... M<message>\0
    CHECK_THAT(refusal, Catch::Contains(std::string("C53000") + '\0'));
    CHECK_THAT(refusal, Catch::Contains("cannot create timeline: "));
    CHECK_THAT(refusal, Catch::Contains("Too many open files"));
    CHECK_THAT(read_file_bytes(dir + ".log"), Catch::Contains("cannot create it for proposer"));
    CHECK(d.alive());
}

namespace {

int open_descriptors(pid_t pid) {
    int n = 0;
    if (DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str())) {
        while (dirent* e = ::readdir(d))
            if (e->d_name[0] != '.') ++n;
        ::closedir(d);
    }
    return n;
}

}  // namespace

TEST_CASE("daemon: idle timelines hold no file descriptor, also after a restart",
          "[sk][daemon][resources]") {
    const std::string dir = temp_dir();
    Daemon d(dir);
    d.start();
    const Id128 tenant = make_id(0xD1);
    const int before = open_descriptors(d.pid());
    constexpr int kTimelines = 30;
    for (int i = 0; i < kTimelines; ++i) {
        PushClient c;
        const Id128 timeline = make_id(static_cast<std::uint8_t>(0x40 + i));
        REQUIRE(c.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
        REQUIRE(become_proposer(c, tenant, timeline, 1, {{1, kStart}}) == kStart);
        WalGenerator gen(kSysId, kSeg, 1, kStart);
        const Lsn acked = stream(c, 1, gen, 5000);
        REQUIRE(acked == gen.position());
        c.close();
    }
    // The server notices each closed connection on its own thread: wait for
    // the count to settle (bounded).
    auto settled = [&] {
        int n = 0;
        for (int tries = 0; tries < 100; ++tries) {
            n = open_descriptors(d.pid());
            if (n <= before) break;
            ::usleep(50 * 1000);
        }
        return n;
    };
    const int after = settled();
    INFO("descriptors before " << before << ", after " << kTimelines << " timelines " << after);
    CHECK(after <= before);
    CHECK_THAT(http_get(d.http_port(), "/v1/status"),
               Catch::Contains("\"timelines\":" + std::to_string(kTimelines)));

    // Loaded at start-up: still none held.
    REQUIRE(WIFEXITED(d.kill(SIGTERM)));
    d.start();
    const int restarted = settled();
    INFO("after the restart " << restarted);
    CHECK(restarted <= before);
    // And a timeline streams again after its files were closed.
    PushClient c;
    const Id128 timeline = make_id(0x40);
    REQUIRE(c.connect("127.0.0.1", d.pg_port(), options_for(tenant, timeline)));
    REQUIRE(c.start_wal_push());
    REQUIRE(c.send(sk_test::greeting(kSysId, kSeg, tenant, timeline)));
    auto g = c.receive();
    REQUIRE(g);
    CHECK(std::get<AcceptorGreeting>(*g).flush_lsn > kStart);
}
