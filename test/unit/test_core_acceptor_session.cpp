#include <catch2/catch.hpp>

#include "test_core_helpers.h"
#include "walproposer/acceptor.h"
#include "walproposer/acceptor_session.h"

using namespace wp;
using wp::testing::append;
using wp::testing::greeting;
using wp::testing::MemoryAcceptorStorage;

namespace {

ProposerElected elected(Term term) {
    ProposerElected e;
    e.term = term;
    e.start_streaming_lsn = 1000;
    e.term_history = {{1, 1000}};
    if (term > 1) e.term_history.push_back({term, 1000});
    return e;
}

// One acceptor (one timeline) whose sessions share a StreamingSlot.
struct Timeline {
    MemoryAcceptorStorage storage;
    Acceptor acceptor{AcceptorConfig{1}, &storage, AcceptorDurableState{}};
    StreamingSlot slot;
    AcceptorSession session(std::uint64_t id, AcceptorSessionConfig config = {}) {
        return AcceptorSession(id, config, acceptor, slot);
    }
};

// Greets, wins `term` and is elected on `s`.
void elect(AcceptorSession& s, Term term) {
    REQUIRE_FALSE(s.handle(greeting()).error);
    const SessionStep vote = s.handle(VoteRequest{term});
    REQUIRE_FALSE(vote.error);
    REQUIRE(std::get<VoteResponse>(*vote.reply).vote_granted);
    const SessionStep e = s.handle(elected(term));
    REQUIRE_FALSE(e.error);
    REQUIRE(e.elected);
}

}  // namespace

TEST_CASE("session: the greeting comes first", "[core][session]") {
    Timeline tl;
    AcceptorSession s = tl.session(1);
    const SessionStep early = s.handle(VoteRequest{1});
    REQUIRE(early.error);
    CHECK(early.error->kind == SessionErrorKind::kProtocol);
    CHECK(early.error->message == "expected ProposerGreeting, got VoteRequest");
    CHECK_FALSE(early.reply);
    CHECK(tl.storage.calls.empty());  // the acceptor never saw it
    CHECK(tl.acceptor.term() == 0);

    const SessionStep g = s.handle(greeting());
    REQUIRE_FALSE(g.error);
    REQUIRE(g.reply);
    CHECK(std::holds_alternative<AcceptorGreeting>(*g.reply));
    CHECK(s.greeted());
    CHECK(s.greeting() == greeting());
    CHECK_FALSE(s.handle(VoteRequest{1}).error);
}

TEST_CASE("session: the greeting must name the connection's timeline", "[core][session]") {
    Timeline tl;
    AcceptorSessionConfig config;
    config.check_timeline = true;
    config.tenant_id = greeting().tenant_id;
    config.timeline_id = greeting().timeline_id;
    AcceptorSession s = tl.session(1, config);
    ProposerGreeting other = greeting();
    other.timeline_id[0] = 3;
    const SessionStep bad = s.handle(other);
    REQUIRE(bad.error);
    CHECK(bad.error->kind == SessionErrorKind::kWrongTimeline);
    CHECK_FALSE(s.greeted());
    CHECK_FALSE(s.handle(greeting()).error);
}

TEST_CASE("session: an acceptor refusal is an error of the connection", "[core][session]") {
    Timeline tl;
    AcceptorSession s = tl.session(1);
    ProposerGreeting g = greeting();
    g.system_id = 0;  // only a sync proposer may greet without a system id
    const SessionStep bad = s.handle(g);
    REQUIRE(bad.error);
    CHECK(bad.error->kind == SessionErrorKind::kRefused);
    CHECK_FALSE(s.greeted());
    // A message the acceptor does not take from a proposer.
    REQUIRE_FALSE(s.handle(greeting()).error);
    const SessionStep odd = s.handle(AppendResponse{});
    REQUIRE(odd.error);
    CHECK(odd.error->kind == SessionErrorKind::kProtocol);
}

TEST_CASE("session: one streaming proposer per timeline", "[core][session]") {
    Timeline tl;
    AcceptorSession first = tl.session(1);
    AcceptorSession second = tl.session(2);
    elect(first, 1);
    CHECK(first.streaming());
    CHECK(tl.slot.holder() == 1);
    CHECK(tl.slot.term() == 1);
    REQUIRE(first.handle(append(1, 1000, 10)).appended);
    REQUIRE(first.finish_batch().batch.size() == 1);

    // The same proposer reconnects: its repeated ProposerElected takes the
    // stream over from the old connection.
    REQUIRE_FALSE(second.handle(greeting()).error);
    const SessionStep takeover = second.handle(elected(1));
    REQUIRE_FALSE(takeover.error);
    CHECK(takeover.elected);
    CHECK(takeover.superseded == 1);
    CHECK(second.streaming());
    CHECK_FALSE(first.streaming());

    // A late AppendRequest of the old connection is refused, even when it
    // would fit at the end of the WAL; nothing is written.
    const Lsn write_before = tl.acceptor.write_lsn();
    const SessionStep late = first.handle(append(1, 1010, 5));
    REQUIRE(late.error);
    CHECK(late.error->kind == SessionErrorKind::kRefused);
    CHECK(late.error->message == "another proposer connection is streaming on this timeline");
    CHECK_FALSE(late.appended);
    CHECK(tl.acceptor.write_lsn() == write_before);
    CHECK(second.handle(append(1, 1010, 5)).appended);
    CHECK(second.finish_batch().batch.size() == 1);

    // close() frees the slot only for its holder.
    first.close();
    CHECK(tl.slot.holder() == 2);
    second.close();
    CHECK(tl.slot.holder() == 0);
    // Without the slot nobody streams in the current term.
    const SessionStep orphan = second.handle(append(1, 1015, 1));
    REQUIRE(orphan.error);
    CHECK(orphan.error->kind == SessionErrorKind::kRefused);
}

TEST_CASE("session: an older term still reaches the acceptor and learns the new term",
          "[core][session]") {
    Timeline tl;
    AcceptorSession old_primary = tl.session(1);
    AcceptorSession candidate = tl.session(2);
    elect(old_primary, 1);
    REQUIRE_FALSE(candidate.handle(greeting()).error);
    REQUIRE(std::get<VoteResponse>(*candidate.handle(VoteRequest{2}).reply).vote_granted);
    CHECK(old_primary.streaming());  // the vote alone moves no stream
    // The candidate is not elected yet: it may not stream in its term.
    const SessionStep early = candidate.handle(append(2, 1000, 1));
    REQUIRE(early.error);
    CHECK(early.error->kind == SessionErrorKind::kRefused);
    // The old primary's term-1 append gets the normal rejection.
    AcceptorSession reconnected = tl.session(3);
    REQUIRE_FALSE(reconnected.handle(greeting()).error);
    const SessionStep stale = reconnected.handle(append(1, 1000, 4));
    REQUIRE_FALSE(stale.error);
    CHECK_FALSE(stale.appended);
    REQUIRE(stale.reply);
    CHECK(std::get<AppendResponse>(*stale.reply).term == 2);
}

TEST_CASE("session: the test-only switch turns the one-streamer rule off", "[core][session]") {
    Timeline tl;
    AcceptorSessionConfig unsafe;
    unsafe.unsafe_test_only_any_streamer = true;
    AcceptorSession first = tl.session(1, unsafe);
    AcceptorSession second = tl.session(2, unsafe);
    elect(first, 1);
    REQUIRE_FALSE(second.handle(greeting()).error);
    REQUIRE(second.handle(elected(1)).elected);
    CHECK(first.handle(append(1, 1000, 3)).appended);  // the rule would refuse this
}

TEST_CASE("session: a batch of appends is flushed once and every request answered",
          "[core][session]") {
    Timeline tl;
    AcceptorSession s = tl.session(1);
    elect(s, 1);
    tl.storage.calls.clear();
    for (int i = 0; i < 3; ++i) {
        const SessionStep st = s.handle(append(1, 1000 + 10 * i, 10));
        REQUIRE_FALSE(st.error);
        CHECK(st.appended);
        CHECK_FALSE(st.reply);
        CHECK(st.batch.empty());
    }
    CHECK(s.pending_appends() == 3);
    CHECK(tl.acceptor.flush_lsn() == 1000);  // written, not durable
    const SessionStep done = s.finish_batch();
    REQUIRE_FALSE(done.error);
    REQUIRE(done.batch.size() == 3);
    for (const AppendResponse& r : done.batch) CHECK(r.flush_lsn == 1030);
    CHECK(std::count(tl.storage.calls.begin(), tl.storage.calls.end(), "flush") == 1);
    CHECK(s.pending_appends() == 0);
    // An empty batch flushes nothing.
    tl.storage.calls.clear();
    CHECK(s.finish_batch().batch.empty());
    CHECK(tl.storage.calls.empty());
}

TEST_CASE("session: any other message first finishes the batch", "[core][session]") {
    Timeline tl;
    AcceptorSession s = tl.session(1);
    elect(s, 1);
    REQUIRE(s.handle(append(1, 1000, 8)).appended);
    REQUIRE(s.handle(append(1, 1008, 8)).appended);
    WalReadRequest read;
    read.term = 1;
    read.begin_lsn = 1000;
    read.end_lsn = 1016;
    const SessionStep st = s.handle(read);
    REQUIRE_FALSE(st.error);
    // The two AppendResponses come before the read's reply, which sees the
    // appends durable.
    REQUIRE(st.batch.size() == 2);
    CHECK(st.batch[0].flush_lsn == 1016);
    REQUIRE(st.reply);
    CHECK(std::get<WalReadResponse>(*st.reply).wal.size() == 16);
    CHECK(s.pending_appends() == 0);
}

TEST_CASE("session: a failed flush is a storage error and the acceptor stops", "[core][session]") {
    Timeline tl;
    AcceptorSession s = tl.session(1);
    elect(s, 1);
    REQUIRE(s.handle(append(1, 1000, 8)).appended);
    tl.storage.fail_next = true;
    const SessionStep st = s.finish_batch();
    REQUIRE(st.error);
    CHECK(st.error->kind == SessionErrorKind::kStorage);
    CHECK(st.error->message.rfind("WAL flush failed: ", 0) == 0);
    CHECK(st.batch.empty());  // nothing durable, nothing answered
    CHECK(tl.acceptor.failed());
    const SessionStep after = s.handle(VoteRequest{5});
    REQUIRE(after.error);
    CHECK(after.error->kind == SessionErrorKind::kStorage);
}

TEST_CASE("session: a fenced proposer's election is refused for good", "[core][session]") {
    Timeline tl;
    AcceptorSession primary = tl.session(1);
    elect(primary, 1);
    // A sync proposer puts the fence (PostgreSQL timeline 3) with its vote.
    AcceptorSession sync = tl.session(2);
    ProposerGreeting sg = greeting();
    sg.system_id = 0;
    sg.pg_timeline = 0;
    sg.flags = kGreetingFlagSync;
    REQUIRE_FALSE(sync.handle(sg).error);
    VoteRequest fence_vote{2};
    fence_vote.min_pg_timeline = 3;
    REQUIRE(std::get<VoteResponse>(*sync.handle(fence_vote).reply).vote_granted);
    // The old primary (PostgreSQL timeline 2) is refused at ProposerElected.
    AcceptorSession back = tl.session(3);
    REQUIRE_FALSE(back.handle(greeting()).error);
    REQUIRE(std::get<VoteResponse>(*back.handle(VoteRequest{3}).reply).vote_granted);
    const SessionStep refused = back.handle(elected(3));
    REQUIRE(refused.error);
    CHECK(refused.error->kind == SessionErrorKind::kFenced);
    CHECK(refused.error->message.rfind("fenced:", 0) == 0);
    CHECK_FALSE(refused.elected);
    CHECK(tl.slot.holder() == 1);
}

TEST_CASE("streaming slot: claim and release", "[core][session]") {
    StreamingSlot slot;
    CHECK(slot.holder() == 0);
    CHECK_FALSE(slot.held_by(0));
    CHECK(slot.claim(4, 7) == 0);
    CHECK(slot.held_by(4));
    CHECK(slot.term() == 7);
    CHECK(slot.claim(4, 8) == 0);  // a repeated claim supersedes nobody
    CHECK(slot.claim(5, 8) == 4);
    slot.release(4);  // not the holder: nothing changes
    CHECK(slot.holder() == 5);
    slot.release(5);
    CHECK(slot.holder() == 0);
    CHECK(slot.term() == 0);
}
