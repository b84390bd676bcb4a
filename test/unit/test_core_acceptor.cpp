#include <catch2/catch.hpp>

#include "walproposer/acceptor.h"

using namespace wp;

namespace {

// In-memory storage that records calls; unflushed bytes vanish on crash().
class TestStorage : public AcceptorStorage {
public:
    AcceptorDurableState durable;
    Lsn start = 0, written = 0, flushed = 0;
    std::vector<std::string> calls;
    Status persist_state(const AcceptorDurableState& s) override {
        calls.push_back("persist");
        durable = s;
        return Status();
    }
    Status write_wal(Lsn begin, const std::uint8_t*, std::size_t size) override {
        calls.push_back("write");
        if (begin != written) return Status::error("not at end");
        written += size;
        return Status();
    }
    Status flush_wal() override {
        calls.push_back("flush");
        flushed = written;
        return Status();
    }
    Status truncate_wal(Lsn end) override {
        calls.push_back("truncate");
        if (!start) start = end;
        written = flushed = end;
        return Status();
    }
    Lsn flush_lsn() const override { return flushed; }
    void crash() { written = flushed; }
};

ProposerGreeting greeting() {
    ProposerGreeting g;
    g.system_id = 99;
    g.pg_version = 150004;
    g.wal_segment_size = 16 << 20;
    g.pg_timeline = 2;
    return g;
}

AppendRequest append(Term term, Lsn begin, std::size_t n, Lsn commit = 0) {
    AppendRequest r;
    r.term = term;
    r.begin_lsn = begin;
    r.end_lsn = begin + n;
    r.commit_lsn = commit;
    r.wal.assign(n, 0x5A);
    return r;
}

// A fresh acceptor that granted `term` and accepted its ProposerElected at 1000.
struct Fixture {
    TestStorage storage;
    Acceptor acceptor{AcceptorConfig{1}, &storage, AcceptorDurableState{}};
    explicit Fixture(Term term = 1) {
        REQUIRE(acceptor.handle_greeting(greeting()).ok());
        REQUIRE(acceptor.handle_vote_request(VoteRequest{term})->vote_granted);
        ProposerElected e;
        e.term = term;
        e.start_streaming_lsn = 1000;
        e.term_history = {{term, 1000}};
        auto r = acceptor.handle_proposer_elected(e);
        REQUIRE(r.ok());
        REQUIRE(r->flush_lsn == 1000);
    }
};

}  // namespace

TEST_CASE("greeting validation", "[core][acceptor]") {
    TestStorage storage;
    Acceptor acc(AcceptorConfig{7}, &storage, AcceptorDurableState{});
    auto first = acc.handle_greeting(greeting());
    REQUIRE(first.ok());
    CHECK(first->node_id == 7);
    CHECK(storage.durable.identity.system_id == 99);  // adopted and persisted

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
    g = greeting();
    g.pg_timeline = 3;  // newer: adopted
    CHECK(acc.handle_greeting(g).ok());
    CHECK(storage.durable.identity.pg_timeline == 3);
}

TEST_CASE("votes: only a higher term, persisted before the reply", "[core][acceptor]") {
    TestStorage storage;
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
        auto r = f.acceptor.handle_proposer_elected(e);
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
        auto r = f.acceptor.handle_proposer_elected(e);
        REQUIRE_FALSE(r.ok());
        CHECK(r.message().find("commit_lsn") != std::string::npos);
        CHECK(f.acceptor.flush_lsn() == 1200);
    }
    SECTION("a stale ProposerElected gets the higher term") {
        ProposerElected e;
        e.term = 2;
        e.term_history = {{1, 1000}, {2, 1200}};
        e.start_streaming_lsn = 1200;
        auto r = f.acceptor.handle_proposer_elected(e);
        REQUIRE(r.ok());
        CHECK(r->term == 3);
    }
}

TEST_CASE("a crash loses unflushed WAL but keeps votes and acknowledged WAL", "[core][acceptor]") {
    Fixture f(1);
    REQUIRE(f.acceptor.handle_append_request(append(1, 1000, 100)).ok());
    REQUIRE(f.acceptor.flush().ok());
    REQUIRE(f.acceptor.handle_append_request(append(1, 1100, 100)).ok());  // not flushed
    f.storage.crash();
    Acceptor restarted(AcceptorConfig{1}, &f.storage, f.storage.durable);
    CHECK(restarted.flush_lsn() == 1100);
    CHECK(restarted.term() == 1);
    CHECK(restarted.last_log_term() == 1);
    auto v = restarted.handle_vote_request(VoteRequest{1});
    CHECK_FALSE(v->vote_granted);
    CHECK(v->term_history == TermHistory{{1, 1000}});
}
