#include <catch2/catch.hpp>

#include "test_core_helpers.h"
#include "walproposer/proposer.h"

using namespace wp;
using wp::testing::MemoryWal;

namespace {

// Drives a Proposer over 3 acceptors with hand-written acceptor replies.
struct Harness {
    MemoryWal wal = MemoryWal::pattern();
    std::unique_ptr<Proposer> p;
    ProposerOutput last;
    TimeMs now = 1000;

    explicit Harness(TermHistory own = {}, Lsn local_flush = 0x3000, bool unsafe_old_terms = false,
                     TimeMs commit_notice_delay_ms = 0) {
        ProposerConfig cfg;
        cfg.commit_notice_delay_ms = commit_notice_delay_ms;
        cfg.acceptor_count = 3;
        cfg.greeting.system_id = 1;
        cfg.own_term_history = std::move(own);
        cfg.timeline_start_lsn = 0x1000;
        cfg.max_append_bytes = 0x10000;
        cfg.unsafe_test_only_commit_old_terms = unsafe_old_terms;
        p = std::make_unique<Proposer>(cfg, &wal);
        last = p->start(now, local_flush);
        REQUIRE(last.connect.size() == 3);
        for (std::size_t k = 0; k < 3; ++k) {
            last = p->on_connected(k, now);
            REQUIRE(last.messages.size() == 1);
            REQUIRE(std::holds_alternative<ProposerGreeting>(decode(last.messages[0].payload).value()));
        }
    }
    ProposerOutput deliver(std::size_t k, const Message& m) {
        const auto bytes = encode(m);
        last = p->on_message(k, bytes.data(), bytes.size(), now);
        return last;
    }
    // Messages of type T sent to acceptor k in the last output.
    template <typename T>
    std::vector<T> sent(std::size_t k) const {
        std::vector<T> result;
        for (const auto& m : last.messages)
            if (m.acceptor == k) {
                auto d = decode(m.payload);
                if (d.ok() && std::holds_alternative<T>(d.value())) result.push_back(std::get<T>(d.value()));
            }
        return result;
    }
};

// A VoteResponse whose WAL tail holds the MemoryWal::pattern() bytes (the acceptor
// holds this primary's WAL) unless `foreign_tail` (another primary's WAL).
VoteResponse vote(Term term, Lsn flush, TermHistory h, bool granted = true,
                  bool foreign_tail = false) {
    VoteResponse v;
    v.term = term;
    v.vote_granted = granted;
    v.flush_lsn = flush;
    v.tail_lsn = flush;
    if (!h.empty())
        v.tail_lsn =
            std::max<Lsn>(h.front().lsn, flush > kVoteTailBytes ? flush - kVoteTailBytes : 0);
    for (Lsn l = v.tail_lsn; l < flush; ++l)
        v.tail.push_back(static_cast<std::uint8_t>(foreign_tail && l + 16 >= flush ? ~l : l));
    v.term_history = std::move(h);
    return v;
}

}  // namespace

TEST_CASE("first election on empty acceptors", "[core][proposer]") {
    Harness h;
    h.deliver(0, AcceptorGreeting{1, 0, 0, 0});
    CHECK(h.p->state() == ProposerState::kCollectingGreetings);
    h.deliver(1, AcceptorGreeting{2, 3, 0, 0});
    CHECK(h.p->state() == ProposerState::kCampaigning);
    CHECK(h.p->term() == 4);  // max seen + 1
    CHECK(h.sent<VoteRequest>(0).size() == 1);
    CHECK(h.sent<VoteRequest>(1).size() == 1);
    h.deliver(0, vote(4, 0, {}));
    CHECK(h.p->state() == ProposerState::kCampaigning);
    h.deliver(1, vote(4, 0, {}));
    REQUIRE(h.p->state() == ProposerState::kElected);
    REQUIRE(h.last.persist_own_term_history);
    CHECK(*h.last.persist_own_term_history == TermHistory{{4, 0x1000}});
    auto e = h.sent<ProposerElected>(0);
    REQUIRE(e.size() == 1);
    CHECK(e[0].start_streaming_lsn == 0x1000);
    CHECK(e[0].term_history == TermHistory{{4, 0x1000}});
    // Ack of ProposerElected starts streaming from the acceptor's flush.
    h.deliver(0, AppendResponse{4, 0x1000, 0, 0, 0});
    auto appends = h.sent<AppendRequest>(0);
    REQUIRE(appends.size() == 1);
    CHECK(appends[0].begin_lsn == 0x1000);
    CHECK(appends[0].end_lsn == 0x3000);
    CHECK(appends[0].wal.size() == 0x2000);
    // A late acceptor joins an elected proposer.
    h.deliver(2, AcceptorGreeting{3, 0, 0, 0});
    CHECK(h.sent<VoteRequest>(2).size() == 1);
    h.deliver(2, vote(4, 0, {}));
    CHECK(h.sent<ProposerElected>(2).size() == 1);
    auto st = h.p->status();
    CHECK(st.acceptors[2].state == AcceptorConnState::kStreaming);
    CHECK(st.quorum == 2);
}

TEST_CASE("donor is the highest (last_log_term, flush_lsn); start points are per acceptor", "[core][proposer]") {
    Harness h({{1, 0x1000}, {2, 0x1800}}, 0x4000);
    for (std::size_t k = 0; k < 3; ++k) h.deliver(k, AcceptorGreeting{k + 1, 2, 0, 0});
    REQUIRE(h.p->term() == 3);
    h.deliver(0, vote(3, 0x2800, {{1, 0x1000}}));               // long, but old term
    h.deliver(1, vote(3, 0x2000, {{1, 0x1000}, {2, 0x1800}}));  // donor
    REQUIRE(h.p->state() == ProposerState::kElected);
    const TermHistory expected = {{1, 0x1000}, {2, 0x1800}, {3, 0x2000}};
    CHECK(h.p->status().term_history == expected);
    CHECK(h.p->status().term_start_lsn == 0x2000);
    auto e0 = h.sent<ProposerElected>(0);
    REQUIRE(e0.size() == 1);
    CHECK(e0[0].start_streaming_lsn == 0x1800);  // term 1 diverged at 0x1800 on acceptor 0
    auto e1 = h.sent<ProposerElected>(1);
    REQUIRE(e1.size() == 1);
    CHECK(e1[0].start_streaming_lsn == 0x2000);
}

TEST_CASE("figure 8: WAL of older terms is not committed by counting replicas", "[core][proposer]") {
    for (bool unsafe : {false, true}) {
        Harness h({{1, 0x1000}}, 0x4000, unsafe);
        for (std::size_t k = 0; k < 3; ++k) h.deliver(k, AcceptorGreeting{k + 1, 1, 1, 0});
        h.deliver(0, vote(2, 0x2000, {{1, 0x1000}}));  // donor: term 2 starts at 0x2000
        h.deliver(1, vote(2, 0x1800, {{1, 0x1000}}));
        REQUIRE(h.p->state() == ProposerState::kElected);
        REQUIRE(h.p->status().term_start_lsn == 0x2000);
        h.deliver(0, AppendResponse{2, 0x2000, 0, 0, 0});
        h.deliver(1, AppendResponse{2, 0x1800, 0, 0, 0});
        // Acceptor 1 catches up to 0x1C00: a majority holds [.., 0x1C00), all of term 1.
        h.deliver(1, AppendResponse{2, 0x1C00, 0, 0, 0});
        if (!unsafe) {
            CHECK(h.p->commit_lsn() == 0);
            CHECK_FALSE(h.last.commit_lsn.has_value());
        } else {
            CHECK(h.p->commit_lsn() == 0x1C00);  // the deliberately broken rule
        }
        // Once a majority is at or past the term start, everything up to it commits.
        h.deliver(1, AppendResponse{2, 0x2400, 0, 0, 0});
        CHECK(h.p->commit_lsn() == 0x2000);
        h.deliver(0, AppendResponse{2, 0x3000, 0, 0, 0});
        CHECK(h.p->commit_lsn() == 0x2400);
        REQUIRE(h.last.commit_lsn);
        CHECK(*h.last.commit_lsn == 0x2400);
    }
}

TEST_CASE("a higher term makes the proposer step down and campaign again", "[core][proposer]") {
    Harness h;
    h.deliver(0, AcceptorGreeting{1, 0, 0, 0});
    h.deliver(1, AcceptorGreeting{2, 0, 0, 0});
    h.deliver(0, vote(1, 0, {}));
    h.deliver(1, vote(1, 0, {}));
    REQUIRE(h.p->state() == ProposerState::kElected);
    h.deliver(0, AppendResponse{7, 0x1000, 0, 0, 0});
    CHECK(h.p->state() == ProposerState::kBackingOff);
    CHECK(h.last.disconnect.size() >= 2);
    h.now += 60000;
    auto out = h.p->on_tick(h.now);
    CHECK(h.p->state() == ProposerState::kCollectingGreetings);
    CHECK(out.connect.size() == 3);
    for (std::size_t k = 0; k < 3; ++k) h.p->on_connected(k, h.now);
    h.deliver(0, AcceptorGreeting{1, 7, 1, 0x1000});
    h.deliver(1, AcceptorGreeting{2, 7, 1, 0x1000});
    CHECK(h.p->term() == 8);
}

TEST_CASE("a stale primary refuses to campaign and says why", "[core][proposer]") {
    SECTION("the quorum's WAL contains a term this primary did not write") {
        Harness h({{1, 0x1000}}, 0x4000);
        for (std::size_t k = 0; k < 3; ++k) h.deliver(k, AcceptorGreeting{k + 1, 3, 3, 0x2000});
        h.deliver(0, vote(4, 0x2000, {{1, 0x1000}, {3, 0x1800}}));
        h.deliver(1, vote(4, 0x2000, {{1, 0x1000}, {3, 0x1800}}));
        REQUIRE(h.p->state() == ProposerState::kSuperseded);
        auto st = h.p->status();
        CHECK(st.superseded_by_term == 3);
        CHECK(st.superseded_at_lsn == 0x1800);
        CHECK(st.superseded_reason.find("did not write") != std::string::npos);
        CHECK_FALSE(h.last.persist_own_term_history.has_value());
        CHECK(h.sent<ProposerElected>(0).empty());
        // It never campaigns again.
        h.now += 100000;
        auto out = h.p->on_tick(h.now);
        CHECK(out.connect.empty());
    }
    SECTION("the quorum holds WAL beyond this primary's end") {
        Harness h({{1, 0x1000}}, 0x1500);
        for (std::size_t k = 0; k < 3; ++k) h.deliver(k, AcceptorGreeting{k + 1, 1, 1, 0x1400});
        h.deliver(0, vote(2, 0x1600, {{1, 0x1000}}));
        h.deliver(1, vote(2, 0x1400, {{1, 0x1000}}));
        REQUIRE(h.p->state() == ProposerState::kSuperseded);
        CHECK(h.p->status().superseded_at_lsn == 0x1600);
    }
    SECTION("greetings alone can show it, before any vote disturbs anyone") {
        Harness h({{1, 0x1000}}, 0x1500);
        h.deliver(0, AcceptorGreeting{1, 5, 5, 0x9000});
        h.deliver(1, AcceptorGreeting{2, 5, 5, 0x9000});
        CHECK(h.p->state() == ProposerState::kSuperseded);
        CHECK(h.sent<VoteRequest>(0).empty());
    }
    SECTION("its own earlier terms are not foreign") {
        Harness h({{1, 0x1000}, {3, 0x1800}}, 0x4000);
        for (std::size_t k = 0; k < 3; ++k) h.deliver(k, AcceptorGreeting{k + 1, 3, 3, 0x2000});
        h.deliver(0, vote(4, 0x2000, {{1, 0x1000}, {3, 0x1800}}));
        h.deliver(1, vote(4, 0x1200, {{1, 0x1000}}));
        CHECK(h.p->state() == ProposerState::kElected);
    }
}

TEST_CASE("a restored snapshot has our terms but not our WAL: refused by content",
          "[core][proposer]") {
    // This data directory was restored from a snapshot taken in term 3; the
    // real primary went on writing in term 3 after it. The terms match, the
    // positions look fine (our WAL is longer), only the bytes tell.
    Harness h({{1, 0x1000}, {3, 0x1800}}, 0x4000);
    for (std::size_t k = 0; k < 3; ++k) h.deliver(k, AcceptorGreeting{k + 1, 3, 3, 0x2000});
    h.deliver(0, vote(4, 0x2000, {{1, 0x1000}, {3, 0x1800}}, true, /*foreign_tail=*/true));
    h.deliver(1, vote(4, 0x2000, {{1, 0x1000}, {3, 0x1800}}, true, /*foreign_tail=*/true));
    REQUIRE(h.p->state() == ProposerState::kSuperseded);
    auto st = h.p->status();
    CHECK(st.superseded_at_lsn == 0x2000 - 16);
    CHECK(st.superseded_reason.find("differs") != std::string::npos);
    CHECK_FALSE(h.last.persist_own_term_history.has_value());
    CHECK(h.sent<ProposerElected>(0).empty());
}

TEST_CASE("truncate_lsn counts only flushes acknowledged in this term", "[core][proposer]") {
    // Acceptor 2 greets with a long divergent tail (flush 0x2800 of term 1)
    // that the election will cut at 0x1800: its greeting's flush must not
    // move truncate_lsn (the primary's slot) past what it will hold.
    Harness h({{1, 0x1000}, {2, 0x1800}}, 0x4000);
    for (std::size_t k = 0; k < 3; ++k) h.deliver(k, AcceptorGreeting{k + 1, 2, 1, 0x2800});
    h.deliver(0, vote(3, 0x2000, {{1, 0x1000}, {2, 0x1800}}));
    h.deliver(1, vote(3, 0x2000, {{1, 0x1000}, {2, 0x1800}}));
    REQUIRE(h.p->state() == ProposerState::kElected);
    h.deliver(0, AppendResponse{3, 0x2000, 0, 0, 0});
    h.deliver(1, AppendResponse{3, 0x2000, 0, 0, 0});
    h.deliver(0, AppendResponse{3, 0x3000, 0, 0, 0});
    h.deliver(1, AppendResponse{3, 0x3000, 0, 0, 0});
    REQUIRE(h.p->commit_lsn() == 0x3000);
    CHECK(h.p->status().truncate_lsn == 0);  // acceptor 2 not heard from in term 3
    h.deliver(2, vote(3, 0x2800, {{1, 0x1000}}, false));
    auto e = h.sent<ProposerElected>(2);
    REQUIRE(e.size() == 1);
    CHECK(e[0].start_streaming_lsn == 0x1800);
    h.deliver(2, AppendResponse{3, 0x1800, 0, 0, 0});
    CHECK(h.p->status().truncate_lsn == 0x1800);
}

TEST_CASE("garbage from an acceptor drops only that connection", "[core][proposer]") {
    Harness h;
    const std::uint8_t junk[] = {'a', 1, 2};
    auto out = h.p->on_message(0, junk, sizeof junk, h.now);
    CHECK(out.disconnect == std::vector<std::size_t>{0});
    auto st = h.p->status();
    CHECK(st.acceptors[0].state == AcceptorConnState::kOffline);
    CHECK(!st.acceptors[0].last_error.empty());
    CHECK(st.acceptors[1].state == AcceptorConnState::kHandshake);
}

TEST_CASE("a new commit LSN rides on the next WAL, or is sent after the notice delay",
          "[core][proposer]") {
    Harness h({}, 0x3000, false, 5);
    for (std::size_t k = 0; k < 2; ++k) h.deliver(k, AcceptorGreeting{k + 1, 0, 0, 0});
    for (std::size_t k = 0; k < 2; ++k) h.deliver(k, vote(1, 0, {}));
    REQUIRE(h.p->state() == ProposerState::kElected);
    for (std::size_t k = 0; k < 2; ++k) h.deliver(k, AppendResponse{1, 0x1000, 0, 0, 0});
    // Both flush everything: commit advances to 0x3000, and no empty
    // AppendRequest goes out at once.
    h.deliver(0, AppendResponse{1, 0x3000, 0, 0, 0});
    h.deliver(1, AppendResponse{1, 0x3000, 0, 0, 0});
    REQUIRE(h.p->commit_lsn() == 0x3000);
    CHECK(h.sent<AppendRequest>(0).empty());
    CHECK(h.sent<AppendRequest>(1).empty());
    REQUIRE(h.p->next_deadline().has_value());
    CHECK(*h.p->next_deadline() == h.now + 5);
    // New WAL before the deadline carries the commit LSN: no separate notice.
    h.last = h.p->on_wal_available(0x3100, h.now + 1);
    auto a0 = h.sent<AppendRequest>(0);
    REQUIRE(a0.size() == 1);
    CHECK(a0[0].begin_lsn == 0x3000);
    CHECK(a0[0].commit_lsn == 0x3000);
    CHECK_FALSE(h.p->next_deadline().has_value());
    // Once that WAL is flushed by a quorum, no WAL follows: the empty
    // AppendRequest with the new commit LSN goes out at the deadline, not before.
    h.now += 2;
    h.deliver(0, AppendResponse{1, 0x3100, 0x3000, 0, 0});
    h.deliver(1, AppendResponse{1, 0x3100, 0x3000, 0, 0});
    REQUIRE(h.p->commit_lsn() == 0x3100);
    CHECK(h.sent<AppendRequest>(0).empty());
    h.last = h.p->on_tick(h.now + 4);
    CHECK(h.sent<AppendRequest>(0).empty());
    h.last = h.p->on_tick(h.now + 5);
    for (std::size_t k = 0; k < 2; ++k) {
        auto notice = h.sent<AppendRequest>(k);
        REQUIRE(notice.size() == 1);
        CHECK(notice[0].begin_lsn == notice[0].end_lsn);
        CHECK(notice[0].commit_lsn == 0x3100);
    }
    CHECK_FALSE(h.p->next_deadline().has_value());
}
