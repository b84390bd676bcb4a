#include <catch2/catch.hpp>

#include "test_core_helpers.h"
#include "walproposer/acceptor.h"

using namespace wp;
using wp::testing::append;
using wp::testing::greeting;
using wp::testing::MemoryAcceptorStorage;

namespace {

// A fresh acceptor that granted `term` and accepted its ProposerElected at 1000.
struct Fixture {
    MemoryAcceptorStorage storage;
    Acceptor acceptor{AcceptorConfig{1}, &storage, AcceptorDurableState{}};
    explicit Fixture(Term term = 1) {
        REQUIRE(acceptor.handle_greeting(greeting()).ok());
        REQUIRE(acceptor.handle_vote_request(VoteRequest{term})->vote_granted);
        ProposerElected e;
        e.term = term;
        e.start_streaming_lsn = 1000;
        e.term_history = {{term, 1000}};
        auto r = acceptor.handle_proposer_elected(greeting(), e);
        REQUIRE(r.ok());
        REQUIRE(r->flush_lsn == 1000);
    }
};

}  // namespace

TEST_CASE("greeting validation", "[core][acceptor]") {
    MemoryAcceptorStorage storage;
    Acceptor acc(AcceptorConfig{7}, &storage, AcceptorDurableState{});
    auto first = acc.handle_greeting(greeting());
    REQUIRE(first.ok());
    CHECK(first->node_id == 7);
    CHECK(storage.calls.empty());  // a greeting changes nothing
    // Identity is adopted with the first ProposerElected.
    REQUIRE(acc.handle_vote_request(VoteRequest{1})->vote_granted);
    ProposerElected e;
    e.term = 1;
    e.start_streaming_lsn = 1000;
    e.term_history = {{1, 1000}};
    REQUIRE(acc.handle_proposer_elected(greeting(), e).ok());
    CHECK(storage.durable.identity.system_id == 99);

    auto g = greeting();
    g.system_id = 100;
    CHECK_FALSE(acc.handle_greeting(g).ok());
    g = greeting();
    g.wal_segment_size = 1 << 20;
    CHECK_FALSE(acc.handle_greeting(g).ok());
    g = greeting();
    g.pg_timeline = 1;  // older than the one held
    auto old = acc.handle_greeting(g);
    REQUIRE_FALSE(old.ok());
    CHECK(old.message().find("older") != std::string::npos);
    g = greeting();
    g.protocol_version = 99;
    CHECK_FALSE(acc.handle_greeting(g).ok());
}

TEST_CASE("a greeting from a node that is never elected changes nothing", "[core][acceptor]") {
    // A promoted copy of the primary greets with a newer PostgreSQL timeline.
    // It must not lock the real primary (older timeline) out.
    Fixture f(1);
    const AcceptorDurableState before = f.storage.durable;
    auto promoted = greeting();
    promoted.pg_timeline = 3;
    f.storage.calls.clear();
    REQUIRE(f.acceptor.handle_greeting(promoted).ok());
    CHECK(f.storage.calls.empty());
    CHECK(f.storage.durable == before);
    CHECK(f.acceptor.state().identity.pg_timeline == 2);
    // Even its vote only promises the term.
    REQUIRE(f.acceptor.handle_vote_request(VoteRequest{2})->vote_granted);
    CHECK(f.storage.durable.identity == before.identity);
    CHECK(f.storage.durable.term_history == before.term_history);
    // The real primary is still welcome and can be elected again.
    REQUIRE(f.acceptor.handle_greeting(greeting()).ok());
    REQUIRE(f.acceptor.handle_vote_request(VoteRequest{3})->vote_granted);
    ProposerElected e;
    e.term = 3;
    e.term_history = {{1, 1000}, {3, 1000}};
    e.start_streaming_lsn = 1000;
    REQUIRE(f.acceptor.handle_proposer_elected(greeting(), e).ok());
    // Once elected, a newer timeline is adopted with the election.
    REQUIRE(f.acceptor.handle_vote_request(VoteRequest{4})->vote_granted);
    e.term = 4;
    e.term_history = {{1, 1000}, {4, 1000}};
    REQUIRE(f.acceptor.handle_proposer_elected(promoted, e).ok());
    CHECK(f.storage.durable.identity.pg_timeline == 3);
    // A ProposerElected re-checks the identity of its connection's greeting.
    REQUIRE(f.acceptor.handle_vote_request(VoteRequest{5})->vote_granted);
    e.term = 5;
    e.term_history = {{1, 1000}, {5, 1000}};
    auto stale = f.acceptor.handle_proposer_elected(greeting(), e);
    REQUIRE_FALSE(stale.ok());
    CHECK(stale.message().find("older") != std::string::npos);
}

TEST_CASE("votes: only a higher term, persisted before the reply", "[core][acceptor]") {
    MemoryAcceptorStorage storage;
    Acceptor acc(AcceptorConfig{1}, &storage, AcceptorDurableState{});
    REQUIRE(acc.handle_greeting(greeting()).ok());
    storage.calls.clear();
    auto v = acc.handle_vote_request(VoteRequest{5});
    REQUIRE(v.ok());
    CHECK(v->vote_granted);
    CHECK(storage.calls == std::vector<std::string>{"persist"});
    CHECK(storage.durable.term == 5);
    auto same = acc.handle_vote_request(VoteRequest{5});
    CHECK_FALSE(same->vote_granted);
    auto lower = acc.handle_vote_request(VoteRequest{4});
    CHECK_FALSE(lower->vote_granted);
    CHECK(lower->term == 5);
}

TEST_CASE("appends: term and gap rejections", "[core][acceptor]") {
    Fixture f(3);
    SECTION("lower term gets the higher term back, not an error") {
        auto r = f.acceptor.handle_append_request(append(2, 1000, 10));
        REQUIRE(r.ok());
        CHECK_FALSE(r->needs_flush);
        CHECK(r->reply.term == 3);
    }
    SECTION("a term without ProposerElected is an error") {
        CHECK_FALSE(f.acceptor.handle_append_request(append(4, 1000, 10)).ok());
    }
    SECTION("a gap or overlap is an error") {
        CHECK_FALSE(f.acceptor.handle_append_request(append(3, 1001, 10)).ok());
        CHECK_FALSE(f.acceptor.handle_append_request(append(3, 999, 10)).ok());
    }
}

TEST_CASE("group commit: write, then one flush, then the response", "[core][acceptor]") {
    Fixture f;
    f.storage.calls.clear();
    auto a = f.acceptor.handle_append_request(append(1, 1000, 10, 0));
    auto b = f.acceptor.handle_append_request(append(1, 1010, 10, 1010));
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    CHECK(a->needs_flush);
    CHECK(f.acceptor.make_append_response().flush_lsn == 1000);  // nothing durable yet
    CHECK(f.acceptor.commit_lsn() == 0);
    REQUIRE(f.acceptor.flush().ok());
    CHECK(f.storage.calls == std::vector<std::string>{"write", "write", "flush"});
    auto resp = f.acceptor.make_append_response();
    CHECK(resp.flush_lsn == 1020);
    CHECK(resp.commit_lsn == 1010);
}

TEST_CASE("commit_lsn never decreases and never exceeds flush", "[core][acceptor]") {
    Fixture f;
    REQUIRE(f.acceptor.handle_append_request(append(1, 1000, 100, 5000)).ok());
    REQUIRE(f.acceptor.flush().ok());
    CHECK(f.acceptor.commit_lsn() == 1100);  // capped at flush
    REQUIRE(f.acceptor.handle_append_request(append(1, 1100, 0, 1050)).ok());
    REQUIRE(f.acceptor.flush().ok());
    CHECK(f.acceptor.commit_lsn() == 1100);
    REQUIRE(f.acceptor.persist_horizons().ok());
    CHECK(f.storage.durable.commit_lsn == 1100);
}

TEST_CASE("ProposerElected truncates at the highest common point, never below commit", "[core][acceptor]") {
    Fixture f(1);
    REQUIRE(f.acceptor.handle_append_request(append(1, 1000, 200, 1100)).ok());
    REQUIRE(f.acceptor.flush().ok());
    REQUIRE(f.acceptor.handle_vote_request(VoteRequest{3})->vote_granted);

    SECTION("a new term that branched at 1150 truncates the tail") {
        ProposerElected e;
        e.term = 3;
        e.term_history = {{1, 1000}, {2, 1150}, {3, 1180}};
        e.start_streaming_lsn = 1150;
        f.storage.calls.clear();
        auto r = f.acceptor.handle_proposer_elected(greeting(), e);
        REQUIRE(r.ok());
        CHECK(r->flush_lsn == 1150);
        // Truncate first, then persist the history.
        CHECK(f.storage.calls == std::vector<std::string>{"truncate", "persist"});
        CHECK(f.storage.durable.term_history == e.term_history);
        CHECK(f.acceptor.last_log_term() == 2);  // term 3 starts past our flush
    }
    SECTION("truncating below commit_lsn is refused") {
        ProposerElected e;
        e.term = 3;
        e.term_history = {{1, 1000}, {2, 1050}, {3, 1050}};
        e.start_streaming_lsn = 1050;
        auto r = f.acceptor.handle_proposer_elected(greeting(), e);
        REQUIRE_FALSE(r.ok());
        CHECK(r.message().find("commit_lsn") != std::string::npos);
        CHECK(f.acceptor.flush_lsn() == 1200);
    }
    SECTION("a stale ProposerElected gets the higher term") {
        ProposerElected e;
        e.term = 2;
        e.term_history = {{1, 1000}, {2, 1200}};
        e.start_streaming_lsn = 1200;
        auto r = f.acceptor.handle_proposer_elected(greeting(), e);
        REQUIRE(r.ok());
        CHECK(r->term == 3);
    }
}

TEST_CASE("a crash loses unflushed WAL but keeps votes and acknowledged WAL", "[core][acceptor]") {
    Fixture f(1);
    REQUIRE(f.acceptor.handle_append_request(append(1, 1000, 100)).ok());
    REQUIRE(f.acceptor.flush().ok());
    REQUIRE(f.acceptor.handle_append_request(append(1, 1100, 100)).ok());  // not flushed
    f.storage.power_loss();
    Acceptor restarted(AcceptorConfig{1}, &f.storage, f.storage.durable);
    CHECK(restarted.flush_lsn() == 1100);
    CHECK(restarted.term() == 1);
    CHECK(restarted.last_log_term() == 1);
    auto v = restarted.handle_vote_request(VoteRequest{1});
    CHECK_FALSE(v->vote_granted);
    CHECK(v->term_history == TermHistory{{1, 1000}});
}

TEST_CASE("a late ProposerElected never cuts acknowledged WAL", "[core][acceptor]") {
    // Term 3 is elected; its ProposerElected on connection c1 is held up in
    // TCP. The proposer reconnects (c2), is placed again at 1150, streams to
    // 1400 and commits past 1150 with this acceptor's acknowledgement, while
    // this acceptor's own commit_lsn is still 1100. Then c1's copy arrives.
    Fixture f(1);
    REQUIRE(f.acceptor.handle_append_request(append(1, 1000, 200, 1100)).ok());
    REQUIRE(f.acceptor.flush().ok());
    REQUIRE(f.acceptor.handle_vote_request(VoteRequest{3})->vote_granted);
    ProposerElected e;
    e.term = 3;
    e.term_history = {{1, 1000}, {2, 1150}, {3, 1180}};
    e.start_streaming_lsn = 1150;
    REQUIRE(f.acceptor.handle_proposer_elected(greeting(), e).ok());  // on c2
    REQUIRE(f.acceptor.handle_append_request(append(3, 1150, 250, 1100)).ok());
    REQUIRE(f.acceptor.flush().ok());
    REQUIRE(f.acceptor.flush_lsn() == 1400);  // acknowledged
    REQUIRE(f.acceptor.commit_lsn() == 1100);
    f.storage.calls.clear();
    auto late = f.acceptor.handle_proposer_elected(greeting(), e);  // c1's copy
    REQUIRE(late.ok());
    CHECK(late->flush_lsn == 1400);
    CHECK(f.acceptor.flush_lsn() == 1400);
    CHECK(f.storage.calls.empty());  // nothing cut, nothing persisted

    SECTION("a different history for the same term is refused") {
        ProposerElected other = e;
        other.term_history = {{1, 1000}, {3, 1150}};
        CHECK_FALSE(f.acceptor.handle_proposer_elected(greeting(), other).ok());
        CHECK(f.acceptor.flush_lsn() == 1400);
    }
}

TEST_CASE("ProposerElected must start at the recomputed highest common point", "[core][acceptor]") {
    Fixture f(1);
    REQUIRE(f.acceptor.handle_append_request(append(1, 1000, 200, 1000)).ok());
    REQUIRE(f.acceptor.flush().ok());
    REQUIRE(f.acceptor.handle_vote_request(VoteRequest{3})->vote_granted);
    ProposerElected e;
    e.term = 3;
    e.term_history = {{1, 1000}, {2, 1150}, {3, 1180}};
    e.start_streaming_lsn = 1050;  // placed by an older view of this acceptor
    auto r = f.acceptor.handle_proposer_elected(greeting(), e);
    REQUIRE_FALSE(r.ok());
    CHECK(r.message().find("highest common point") != std::string::npos);
    CHECK(f.acceptor.flush_lsn() == 1200);
    CHECK(f.storage.durable.term_history == TermHistory{{1, 1000}});
}

TEST_CASE("a vote makes written WAL durable and reports the WAL tail", "[core][acceptor]") {
    Fixture f(1);
    REQUIRE(f.acceptor.handle_append_request(append(1, 1000, 300)).ok());  // written, not flushed
    auto v = f.acceptor.handle_vote_request(VoteRequest{2});
    REQUIRE(v.ok());
    CHECK(v->flush_lsn == 1300);
    CHECK(v->tail_lsn == 1000);  // the WAL starts at 1000: fewer than kVoteTailBytes
    CHECK(v->tail == std::vector<std::uint8_t>(300, 0x5A));
    REQUIRE(f.acceptor.handle_append_request(append(1, 1300, 0)).ok());  // lower term now: refused
}

TEST_CASE("a storage failure stops the acceptor and keeps what others saw", "[core][acceptor]") {
    Fixture f(1);
    REQUIRE(f.acceptor.handle_append_request(append(1, 1000, 100, 1100)).ok());
    REQUIRE(f.acceptor.flush().ok());
    REQUIRE(f.acceptor.commit_lsn() == 1100);
    SECTION("a failed persist of horizons") {
        f.storage.fail_next = true;
        CHECK_FALSE(f.acceptor.persist_horizons().ok());
    }
    SECTION("a failed write (ENOSPC)") {
        f.storage.fail_next = true;
        CHECK_FALSE(f.acceptor.handle_append_request(append(1, 1100, 10)).ok());
    }
    SECTION("a failed vote persist") {
        f.storage.fail_next = true;
        CHECK_FALSE(f.acceptor.handle_vote_request(VoteRequest{2}).ok());
        CHECK(f.acceptor.term() == 1);  // the promise was not made
    }
    CHECK(f.acceptor.failed());
    CHECK(f.acceptor.commit_lsn() == 1100);  // not rolled back
    // Everything is refused from now on, even if the disk recovers.
    CHECK_FALSE(f.acceptor.handle_greeting(greeting()).ok());
    CHECK_FALSE(f.acceptor.handle_vote_request(VoteRequest{9}).ok());
    CHECK_FALSE(f.acceptor.handle_append_request(append(1, 1100, 10)).ok());
    CHECK_FALSE(f.acceptor.flush().ok());
}

TEST_CASE("a durable commit_lsn above the recovered WAL refuses service", "[core][acceptor]") {
    Fixture f(1);
    REQUIRE(f.acceptor.handle_append_request(append(1, 1000, 100, 1100)).ok());
    REQUIRE(f.acceptor.flush().ok());
    REQUIRE(f.acceptor.persist_horizons().ok());
    f.storage.bytes.resize(50);  // acknowledged WAL went missing
    f.storage.flushed_end = f.storage.synced_end = f.storage.written_end();
    Acceptor restarted(AcceptorConfig{1}, &f.storage, f.storage.durable);
    CHECK(restarted.failed());
    auto g = restarted.handle_greeting(greeting());
    REQUIRE_FALSE(g.ok());
    CHECK(g.message().find("missing") != std::string::npos);
    CHECK(restarted.commit_lsn() == 1100);  // not silently lowered
}
