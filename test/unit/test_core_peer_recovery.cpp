// Peer recovery in the core: Acceptor::begin_peer_recovery / append_peer_wal
// (docs/consensus.md, "Peer recovery").
#include <catch2/catch.hpp>

#include "test_core_helpers.h"
#include "walproposer/acceptor.h"

using namespace wp;
using wp::testing::append;
using wp::testing::greeting;
using wp::testing::MemoryAcceptorStorage;

namespace {

// An acceptor elected in `term` at 1000 that holds `bytes` bytes of it,
// committed up to `commit`.
struct Laggard {
    MemoryAcceptorStorage storage;
    Acceptor acceptor{AcceptorConfig{1}, &storage, AcceptorDurableState{}};
    Laggard(Term term, std::size_t bytes, Lsn commit) {
        REQUIRE(acceptor.handle_greeting(greeting()).ok());
        REQUIRE(acceptor.handle_vote_request(VoteRequest{term})->vote_granted);
        ProposerElected e;
        e.term = term;
        e.start_streaming_lsn = 1000;
        e.term_history = {{term, 1000}};
        REQUIRE(acceptor.handle_proposer_elected(greeting(), e).ok());
        if (bytes) {
            REQUIRE(acceptor.handle_append_request(append(term, 1000, bytes, commit)).ok());
            REQUIRE(acceptor.flush().ok());
        }
    }
};

std::vector<std::uint8_t> bytes_of(std::size_t n, std::uint8_t value) {
    return std::vector<std::uint8_t>(n, value);
}

}  // namespace

TEST_CASE("peer recovery appends committed WAL and raises commit_lsn", "[core][acceptor][recovery]") {
    Laggard m(1, 100, 1050);  // holds [1000, 1100), committed to 1050
    const TermHistory peer = {{1, 1000}};
    auto plan = m.acceptor.begin_peer_recovery(peer, 1500, 1000);
    REQUIRE(plan.ok());
    CHECK_FALSE(plan->needs_bootstrap);
    CHECK(plan->fetch_from == 1100);
    CHECK(plan->target == 1500);
    CHECK(m.acceptor.peer_recovery_active());
    const auto wal = bytes_of(400, 0x5A);
    REQUIRE(m.acceptor.append_peer_wal(1100, wal.data(), 200).ok());
    REQUIRE(m.acceptor.append_peer_wal(1300, wal.data(), 200).ok());
    CHECK(m.acceptor.commit_lsn() == 1050);  // not durable yet
    REQUIRE(m.acceptor.flush().ok());
    CHECK(m.acceptor.flush_lsn() == 1500);
    CHECK(m.acceptor.commit_lsn() == 1500);
    // Nothing beyond the target, nothing out of order.
    CHECK_FALSE(m.acceptor.append_peer_wal(1500, wal.data(), 1).ok());
    CHECK_FALSE(m.acceptor.append_peer_wal(1400, wal.data(), 1).ok());
    CHECK_FALSE(m.acceptor.failed());
    // The promised term and the history did not change.
    CHECK(m.acceptor.term() == 1);
    CHECK(m.storage.durable.term_history == TermHistory{{1, 1000}});
}

TEST_CASE("peer recovery adopts the peer's history before writing and keeps the term",
          "[core][acceptor][recovery]") {
    Laggard m(1, 100, 1100);  // term 1 wrote [1000, 1100)
    // The cluster moved on: term 4 took over at 1100 and committed to 1600.
    // This member promised term 2 in the meantime (it voted, then went down).
    REQUIRE(m.acceptor.handle_vote_request(VoteRequest{2})->vote_granted);
    const TermHistory peer = {{1, 1000}, {4, 1100}};
    m.storage.calls.clear();
    auto plan = m.acceptor.begin_peer_recovery(peer, 1600, 1000);
    REQUIRE(plan.ok());
    CHECK(plan->fetch_from == 1100);
    // The history is durable before any WAL of term 4 is written.
    REQUIRE_FALSE(m.storage.calls.empty());
    CHECK(m.storage.calls.front() == "persist");
    CHECK(m.storage.durable.term_history == peer);
    CHECK(m.storage.durable.term == 2);  // recovery promises nothing
    const auto wal = bytes_of(500, 0x11);
    REQUIRE(m.acceptor.append_peer_wal(1100, wal.data(), wal.size()).ok());
    REQUIRE(m.acceptor.flush().ok());
    CHECK(m.acceptor.last_log_term() == 4);
    CHECK(m.acceptor.commit_lsn() == 1600);
    // The promise is still term 2, so the next proposer's vote is granted as
    // before; that vote ends the recovery.
    REQUIRE(m.acceptor.handle_vote_request(VoteRequest{5})->vote_granted);
    CHECK_FALSE(m.acceptor.peer_recovery_active());
}

TEST_CASE("peer recovery truncates a divergent uncommitted tail, never committed WAL",
          "[core][acceptor][recovery]") {
    Laggard m(1, 300, 1100);  // term 1 wrote [1000, 1300), committed to 1100
    // Term 2 was elected with a donor that ended at 1200: [1200, 1300) of
    // term 1 was never committed and term 2 wrote something else there.
    const TermHistory peer = {{1, 1000}, {2, 1200}};
    auto plan = m.acceptor.begin_peer_recovery(peer, 1500, 1000);
    REQUIRE(plan.ok());
    CHECK(plan->fetch_from == 1200);
    CHECK(m.acceptor.flush_lsn() == 1200);
    const auto wal = bytes_of(300, 0x22);
    REQUIRE(m.acceptor.append_peer_wal(1200, wal.data(), wal.size()).ok());
    REQUIRE(m.acceptor.flush().ok());
    CHECK(m.acceptor.commit_lsn() == 1500);

    // A peer whose committed WAL would differ below our commit_lsn: refused,
    // nothing changes (that would be a safety violation somewhere).
    Laggard n(1, 300, 1250);
    const auto durable_before = n.storage.durable;
    auto bad = n.acceptor.begin_peer_recovery(peer, 1500, 1000);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.message().find("refusing to truncate") != std::string::npos);
    CHECK(n.acceptor.flush_lsn() == 1300);
    CHECK(n.storage.durable == durable_before);
    CHECK_FALSE(n.acceptor.failed());
}

TEST_CASE("peer recovery needs a bootstrap when the peer removed what is missing",
          "[core][acceptor][recovery]") {
    Laggard m(1, 100, 1100);
    const TermHistory peer = {{1, 1000}};
    auto plan = m.acceptor.begin_peer_recovery(peer, 9000, 4096);
    REQUIRE(plan.ok());
    CHECK(plan->needs_bootstrap);
    CHECK_FALSE(m.acceptor.peer_recovery_active());
    CHECK(m.acceptor.flush_lsn() == 1100);

    // Up to date: nothing to fetch.
    auto same = m.acceptor.begin_peer_recovery(peer, 1100, 1000);
    REQUIRE(same.ok());
    CHECK_FALSE(same->needs_bootstrap);
    CHECK(same->fetch_from == same->target);

    // An acceptor with no WAL at all.
    MemoryAcceptorStorage storage;
    Acceptor empty(AcceptorConfig{2}, &storage, AcceptorDurableState{});
    auto e = empty.begin_peer_recovery(peer, 2000, 1000);
    REQUIRE(e.ok());
    CHECK(e->needs_bootstrap);
}

TEST_CASE("a proposer ends peer recovery", "[core][acceptor][recovery]") {
    Laggard m(1, 100, 1100);
    auto plan = m.acceptor.begin_peer_recovery({{1, 1000}}, 1500, 1000);
    REQUIRE(plan.ok());
    REQUIRE(m.acceptor.handle_vote_request(VoteRequest{2})->vote_granted);
    const auto wal = bytes_of(10, 0x33);
    auto late = m.acceptor.append_peer_wal(1100, wal.data(), wal.size());
    REQUIRE_FALSE(late.ok());
    CHECK(late.message().find("not in progress") != std::string::npos);
    CHECK_FALSE(m.acceptor.failed());
}
