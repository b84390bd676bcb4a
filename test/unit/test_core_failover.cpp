// Failover in the core: the sync proposer, the fence, and a promoted
// standby's inherited WAL, with real Acceptors on in-memory storage.
#include <catch2/catch.hpp>

#include <deque>
#include <memory>

#include "test_core_helpers.h"
#include "walproposer/acceptor.h"
#include "walproposer/proposer.h"

using namespace wp;
using wp::testing::MemoryWal;
using wp::testing::MemoryAcceptorStorage;

namespace {

constexpr std::uint64_t kSystemId = 7;

// A promoted standby's WAL: the old primary's bytes (MemoryWal::pattern())
// below the switch point, its own different bytes from there on.
MemoryWal promoted_wal(Lsn switch_point) {
    return MemoryWal::generate(kInvalidLsn, 1 << 20, [switch_point](Lsn l) {
        return static_cast<std::uint8_t>(l < switch_point ? l : (l * 7 + 3));
    });
}

// Three acceptors and a synchronous network to one proposer at a time.
struct Cluster {
    struct Node {
        MemoryAcceptorStorage storage;
        std::unique_ptr<Acceptor> acceptor;
        ProposerGreeting greeting;  // of the current connection
        bool up = true;
    };
    std::array<Node, 3> nodes;
    TimeMs now = 1000;

    Cluster() {
        for (std::size_t k = 0; k < nodes.size(); ++k)
            nodes[k].acceptor = std::make_unique<Acceptor>(AcceptorConfig{k + 1}, &nodes[k].storage,
                                                           AcceptorDurableState{});
    }

    static ProposerConfig primary_config(std::uint32_t pg_timeline, TermHistory own = {}) {
        ProposerConfig cfg;
        cfg.acceptor_count = 3;
        cfg.greeting.system_id = kSystemId;
        cfg.greeting.wal_segment_size = 16 * 1024 * 1024;
        cfg.greeting.pg_timeline = pg_timeline;
        cfg.own_term_history = std::move(own);
        cfg.timeline_start_lsn = 0x1000;
        cfg.max_append_bytes = 0x400;
        return cfg;
    }

    static ProposerConfig sync_config() {
        ProposerConfig cfg;
        cfg.acceptor_count = 3;
        cfg.sync = true;
        cfg.max_append_bytes = 0x400;
        return cfg;
    }

    // Delivers everything until nothing moves (or `ticks` ticks of 100 ms).
    void run(Proposer& p, ProposerOutput first, int ticks = 50) {
        std::deque<ProposerOutput> outputs{std::move(first)};
        for (int t = 0; t <= ticks; ++t) {
            while (!outputs.empty()) {
                ProposerOutput out = std::move(outputs.front());
                outputs.pop_front();
                for (const auto& m : out.messages) {
                    auto reply = handle(m.acceptor, m.payload);
                    if (!reply) {
                        outputs.push_back(p.on_disconnected(m.acceptor, now, reply.message()));
                        continue;
                    }
                    for (const auto& bytes : *reply)
                        outputs.push_back(p.on_message(m.acceptor, bytes.data(), bytes.size(), now));
                }
                for (std::size_t k : out.connect)
                    outputs.push_back(nodes[k].up ? p.on_connected(k, now)
                                                  : p.on_disconnected(k, now, "down"));
            }
            now += 100;
            outputs.push_back(p.on_tick(now));
        }
    }

    // One message to acceptor k; its encoded replies, or an error.
    Result<std::vector<std::vector<std::uint8_t>>> handle(std::size_t k,
                                                          const std::vector<std::uint8_t>& payload) {
        using Replies = std::vector<std::vector<std::uint8_t>>;
        Node& node = nodes[k];
        if (!node.up) return Result<Replies>::error("down");
        Message m = decode(payload).value();
        Acceptor& a = *node.acceptor;
        Replies replies;
        if (auto* g = std::get_if<ProposerGreeting>(&m)) {
            node.greeting = *g;
            auto r = a.handle_greeting(*g);
            if (!r) return Result<Replies>::error(r.message());
            replies.push_back(encode(*r));
        } else if (auto* v = std::get_if<VoteRequest>(&m)) {
            auto r = a.handle_vote_request(*v);
            if (!r) return Result<Replies>::error(r.message());
            replies.push_back(encode(*r));
        } else if (auto* e = std::get_if<ProposerElected>(&m)) {
            auto r = a.handle_proposer_elected(node.greeting, *e);
            if (!r) return Result<Replies>::error(r.message());
            replies.push_back(encode(*r));
        } else if (auto* ar = std::get_if<AppendRequest>(&m)) {
            auto r = a.handle_append_request(*ar);
            if (!r) return Result<Replies>::error(r.message());
            if (r->needs_flush) {
                REQUIRE(a.flush().ok());
                replies.push_back(encode(a.make_append_response()));
            } else {
                replies.push_back(encode(r->reply));
            }
        } else if (auto* rr = std::get_if<WalReadRequest>(&m)) {
            auto r = a.handle_wal_read(*rr);
            if (!r) return Result<Replies>::error(r.message());
            replies.push_back(encode(*r));
        }
        return replies;
    }

    std::vector<std::uint8_t> wal(std::size_t k, Lsn begin, Lsn end) {
        std::vector<std::uint8_t> out;
        REQUIRE(nodes[k].storage.read_wal(begin, end, out).ok());
        return out;
    }
};

std::vector<std::uint8_t> pattern(Lsn begin, Lsn end) {
    std::vector<std::uint8_t> out;
    REQUIRE(MemoryWal::pattern().read_wal(begin, end, out).ok());
    return out;
}

// Old primary on PG timeline 1 wrote to 0x5000; acceptor 1 has only up to
// 0x3000 (it was down for the rest). Returns the old primary's own terms.
TermHistory old_primary_wrote(Cluster& c) {
    MemoryWal wal = MemoryWal::pattern();
    Proposer p(Cluster::primary_config(1), &wal);
    c.run(p, p.start(c.now, 0x3000));
    REQUIRE(p.state() == ProposerState::kElected);
    REQUIRE(p.commit_lsn() == 0x3000);
    c.nodes[1].up = false;
    c.run(p, p.on_wal_available(0x5000, c.now), 5);
    REQUIRE(p.commit_lsn() == 0x5000);
    c.nodes[1].up = true;
    return p.status().term_history.empty() ? TermHistory{} : TermHistory{{p.term(), 0x1000}};
}

}  // namespace

TEST_CASE("sync: a quorum holds and commits the donor's WAL, and the old primary is fenced",
          "[core][failover]") {
    Cluster c;
    const TermHistory old_terms = old_primary_wrote(c);
    // The old primary is gone; acceptor 0 is down too: the sync has 1 (lagging) and 2.
    c.nodes[0].up = false;
    Proposer sync(Cluster::sync_config(), nullptr);
    c.run(sync, sync.start(c.now, kInvalidLsn));
    const ProposerStatus st = sync.status();
    REQUIRE(st.sync_done);
    CHECK(st.sync_lsn == 0x5000);
    CHECK(st.fence_pg_timeline == 2);
    CHECK(st.sync_system_id == kSystemId);
    // Acceptor 1 got the missing WAL from the donor, byte for byte.
    CHECK(c.nodes[1].acceptor->flush_lsn() == 0x5000);
    CHECK(c.wal(1, 0x1000, 0x5000) == pattern(0x1000, 0x5000));
    for (std::size_t k : {1, 2}) {
        CHECK(c.nodes[k].acceptor->commit_lsn() == 0x5000);
        CHECK(c.nodes[k].storage.durable.min_pg_timeline == 2);
        // A sync changes no identity.
        CHECK(c.nodes[k].storage.durable.identity.pg_timeline == 1);
        CHECK(c.nodes[k].storage.durable.identity.system_id == kSystemId);
    }

    // The old primary, restarted with its own terms and all its WAL, is fenced:
    // it stops at the first greeting that shows the fence.
    c.nodes[0].up = true;
    MemoryWal wal = MemoryWal::pattern();
    Proposer old(Cluster::primary_config(1, old_terms), &wal);
    c.run(old, old.start(c.now, 0x5000));
    REQUIRE(old.state() == ProposerState::kSuperseded);
    CHECK(old.status().superseded_reason.find("fenced") != std::string::npos);
    // And the acceptors refuse its election even if it ignored that.
    ProposerGreeting g = Cluster::primary_config(1).greeting;
    g.protocol_version = kProtocolVersion;
    auto refused = c.nodes[1].acceptor->handle_proposer_elected(
        g, ProposerElected{99, 0x5000, {{99, 0x5000}}, {}});
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.message().find("fenced") != std::string::npos);
}

TEST_CASE("sync: no quorum means no result; nothing held means nothing to sync",
          "[core][failover]") {
    SECTION("one of three reachable") {
        Cluster c;
        old_primary_wrote(c);
        c.nodes[0].up = c.nodes[1].up = false;
        Proposer sync(Cluster::sync_config(), nullptr);
        c.run(sync, sync.start(c.now, kInvalidLsn));
        CHECK_FALSE(sync.status().sync_done);
        CHECK(sync.state() != ProposerState::kElected);
        CHECK(c.nodes[2].storage.durable.min_pg_timeline == 0);
    }
    SECTION("empty safekeepers (a wrong timeline id)") {
        Cluster c;
        Proposer sync(Cluster::sync_config(), nullptr);
        c.run(sync, sync.start(c.now, kInvalidLsn));
        REQUIRE(sync.state() == ProposerState::kSuperseded);
        CHECK(sync.status().superseded_reason.find("nothing to sync") != std::string::npos);
        for (auto& n : c.nodes) CHECK(n.storage.durable.term == 0);
    }
}

TEST_CASE("promotion: a caught-up standby inherits the quorum's WAL; a lagging one changes nothing",
          "[core][failover]") {
    Cluster c;
    const TermHistory old_terms = old_primary_wrote(c);
    Proposer sync(Cluster::sync_config(), nullptr);
    c.run(sync, sync.start(c.now, kInvalidLsn));
    REQUIRE(sync.status().sync_done);
    const Lsn sync_lsn = sync.status().sync_lsn;

    SECTION("promoted before catching up: refused before any vote") {
        const Lsn switch_point = sync_lsn - 0x800;
        std::array<AcceptorDurableState, 3> before;
        for (std::size_t k = 0; k < 3; ++k) before[k] = c.nodes[k].storage.durable;
        MemoryWal wal = promoted_wal(switch_point);
        ProposerConfig cfg = Cluster::primary_config(2);
        cfg.inherited_wal_end = switch_point;
        Proposer standby(cfg, &wal);
        c.run(standby, standby.start(c.now, switch_point + 0x2000));
        REQUIRE(standby.state() == ProposerState::kSuperseded);
        const std::string reason = standby.status().superseded_reason;
        CHECK(reason.find("promoted before catching up") != std::string::npos);
        CHECK(reason.find(format_lsn(switch_point)) != std::string::npos);
        CHECK(reason.find(format_lsn(sync_lsn)) != std::string::npos);
        for (std::size_t k = 0; k < 3; ++k) CHECK(c.nodes[k].storage.durable == before[k]);
    }
    SECTION("without the check (negative control) it would lose committed WAL") {
        const Lsn switch_point = sync_lsn - 0x800;
        MemoryWal wal = promoted_wal(switch_point);
        ProposerConfig cfg = Cluster::primary_config(2);
        cfg.inherited_wal_end = switch_point;
        cfg.unsafe_test_only_inherit_unchecked = true;
        Proposer standby(cfg, &wal);
        c.run(standby, standby.start(c.now, switch_point + 0x2000));
        REQUIRE(standby.state() == ProposerState::kElected);
        // Elected with a database that lacks committed WAL [switch_point, sync_lsn).
        std::vector<std::uint8_t> local;
        REQUIRE(wal.read_wal(switch_point, sync_lsn, local).ok());
        CHECK(local != c.wal(2, switch_point, sync_lsn));
    }
    SECTION("caught up: elected on the same acceptors, commits its own WAL") {
        MemoryWal wal = promoted_wal(sync_lsn);
        ProposerConfig cfg = Cluster::primary_config(2);
        cfg.inherited_wal_end = sync_lsn;
        Proposer standby(cfg, &wal);
        c.run(standby, standby.start(c.now, sync_lsn + 0x2000));
        REQUIRE(standby.state() == ProposerState::kElected);
        CHECK(standby.status().term_start_lsn == sync_lsn);
        CHECK(standby.commit_lsn() == sync_lsn + 0x2000);
        std::vector<std::uint8_t> expected;
        REQUIRE(wal.read_wal(0x1000, sync_lsn + 0x2000, expected).ok());
        for (std::size_t k = 0; k < 3; ++k) {
            CHECK(c.wal(k, 0x1000, sync_lsn + 0x2000) == expected);
            CHECK(c.nodes[k].storage.durable.identity.pg_timeline == 2);
        }
        // The old primary comes back after the new one was elected: the
        // acceptors hold PostgreSQL timeline 2 now, and their greetings still
        // tell it that it is fenced (it does not retry handshakes forever).
        MemoryWal old_wal = MemoryWal::pattern();
        Proposer old(Cluster::primary_config(1, old_terms), &old_wal);
        c.run(old, old.start(c.now, 0x6000));
        REQUIRE(old.state() == ProposerState::kSuperseded);
        CHECK(old.status().superseded_reason.find("fenced") != std::string::npos);
        for (std::size_t k = 0; k < 3; ++k)
            CHECK(c.nodes[k].storage.durable.identity.pg_timeline == 2);
    }
    SECTION("caught up, but its bytes below the switch point differ: refused") {
        // A standby of another history with the same LSNs (e.g. a stale copy).
        MemoryWal wal = MemoryWal::generate(kInvalidLsn, 1 << 20,
                                            [](Lsn l) { return static_cast<std::uint8_t>(~l); });
        ProposerConfig cfg = Cluster::primary_config(2);
        cfg.inherited_wal_end = sync_lsn;
        Proposer standby(cfg, &wal);
        c.run(standby, standby.start(c.now, sync_lsn + 0x2000));
        REQUIRE(standby.state() == ProposerState::kSuperseded);
        CHECK(standby.status().superseded_reason.find("differs") != std::string::npos);
    }
}
