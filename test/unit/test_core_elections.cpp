// Long runs of elections (a primary in a crash loop) through the real core:
// one Proposer and three Acceptors wired synchronously, no network faults.
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

constexpr Lsn kStart = 0x1000;

struct Cluster {
    MemoryAcceptorStorage storage[3];
    std::unique_ptr<Acceptor> acceptor[3];
    ProposerGreeting greeting[3];  // per connection
    MemoryWal wal = MemoryWal::pattern(kStart + 20000 * 100);  // one checkpoint record per life
    TermHistory own;  // the primary's persisted own terms
    Lsn local_flush = kStart;
    TimeMs now = 1000;

    Cluster() {
        for (int k = 0; k < 3; ++k)
            acceptor[k] = std::make_unique<Acceptor>(AcceptorConfig{static_cast<NodeId>(k + 1)},
                                                     &storage[k], AcceptorDurableState{});
    }

    // Runs one proposer life until `done` or the queue runs dry.
    void run(Proposer& p, ProposerOutput out) {
        std::deque<ProposerOutput> outputs;
        outputs.push_back(std::move(out));
        while (!outputs.empty()) {
            ProposerOutput o = std::move(outputs.front());
            outputs.pop_front();
            if (o.persist_own_term_history) own = *o.persist_own_term_history;
            for (std::size_t k : o.connect) outputs.push_back(p.on_connected(k, now));
            for (const OutgoingMessage& m : o.messages) {
                auto reply = deliver(m.acceptor, m.payload);
                if (reply.empty()) continue;
                outputs.push_back(p.on_message(m.acceptor, reply.data(), reply.size(), now));
            }
        }
    }

    std::vector<std::uint8_t> deliver(std::size_t k, const std::vector<std::uint8_t>& payload) {
        Acceptor& a = *acceptor[k];
        auto decoded = decode(payload);
        REQUIRE(decoded.ok());
        const Message& msg = decoded.value();
        if (auto* g = std::get_if<ProposerGreeting>(&msg)) {
            greeting[k] = *g;
            auto r = a.handle_greeting(*g);
            REQUIRE(r.ok());
            return encode(*r);
        }
        if (auto* v = std::get_if<VoteRequest>(&msg)) {
            auto r = a.handle_vote_request(*v);
            REQUIRE(r.ok());
            return encode(*r);
        }
        if (auto* e = std::get_if<ProposerElected>(&msg)) {
            auto r = a.handle_proposer_elected(greeting[k], *e);
            INFO(r.message());
            REQUIRE(r.ok());
            return encode(*r);
        }
        if (auto* ap = std::get_if<AppendRequest>(&msg)) {
            auto r = a.handle_append_request(*ap);
            REQUIRE(r.ok());
            if (!r->needs_flush) return encode(r->reply);
            REQUIRE(a.flush().ok());
            REQUIRE(a.persist_horizons().ok());
            return encode(a.make_append_response());
        }
        FAIL("unexpected message");
        return {};
    }

    // One life of the primary: start, get elected, commit what it has, die.
    void one_life(bool write_wal) {
        ProposerConfig cfg;
        cfg.acceptor_count = 3;
        cfg.greeting.system_id = 42;
        cfg.greeting.wal_segment_size = 16 << 20;
        cfg.greeting.pg_timeline = 1;
        cfg.own_term_history = own;
        cfg.timeline_start_lsn = kStart;
        Proposer p(cfg, &wal);
        if (write_wal) local_flush += 100;  // each restart writes a checkpoint record
        run(p, p.start(now, local_flush));
        REQUIRE(p.state() == ProposerState::kElected);
        REQUIRE(p.commit_lsn() == local_flush);
        // One more heartbeat round so every acceptor learns commit/truncate LSNs.
        now += 2000;
        run(p, p.on_tick(now));
        now += 10;
    }
};

}  // namespace

TEST_CASE("20000 elections in a crash loop keep every history bounded", "[core][elections]") {
    for (bool write_wal : {true, false}) {
        INFO("WAL written between elections: " << write_wal);
        Cluster c;
        for (int i = 0; i < 20000; ++i) {
            c.one_life(write_wal);
            if (i % 1000 == 0 || i == 19999) {
                INFO("election " << i);
                CHECK(c.own.size() <= 2);
                for (int k = 0; k < 3; ++k) CHECK(c.acceptor[k]->state().term_history.size() <= 3);
            }
        }
        CHECK(c.acceptor[0]->term() == 20000);
        CHECK(c.acceptor[0]->commit_lsn() == c.local_flush);
    }
}

TEST_CASE("trimmed and untrimmed histories agree on the highest common point",
          "[core][term_history]") {
    // The acceptor kept the full history; the proposer trimmed below 0x3000.
    const TermHistory full = {{1, 0x1000}, {2, 0x2000}, {4, 0x3000}, {5, 0x3000}, {6, 0x4000}};
    const TermHistory trimmed = trim_history(full, 0x3000);
    CHECK(trimmed == TermHistory{{2, 0x2000}, {5, 0x3000}, {6, 0x4000}});
    const TermHistory proposer =
        trim_history({{1, 0x1000}, {2, 0x2000}, {4, 0x3000}, {5, 0x3000}, {7, 0x3800}}, 0x3000);
    for (Lsn flush : {Lsn{0x3000}, Lsn{0x3500}, Lsn{0x4800}}) {
        const auto a = highest_common_point(proposer, full, flush);
        const auto b = highest_common_point(proposer, trimmed, flush);
        INFO("flush " << flush);
        CHECK(a.found);
        CHECK(a.lsn == b.lsn);
        CHECK(a.lsn == std::min<Lsn>(flush, 0x3800));
    }
}
