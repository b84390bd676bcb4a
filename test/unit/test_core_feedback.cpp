// Hot-standby feedback through the core: the acceptor puts its consumers'
// feedback into AppendResponse; the proposer reports the lowest non-zero
// value over its streaming acceptors (what the extension applies to its
// slot's xmin).
#include <catch2/catch.hpp>

#include "walproposer/proposer.h"

using namespace wp;

namespace {

class ZeroWal : public WalReader {
  public:
    Status read_wal(Lsn begin, Lsn end, std::vector<std::uint8_t>& out) override {
        out.insert(out.end(), static_cast<std::size_t>(end - begin), 0);
        return Status();
    }
};

void deliver(Proposer& p, std::size_t k, const Message& m, TimeMs now) {
    const auto bytes = encode(m);
    p.on_message(k, bytes.data(), bytes.size(), now);
}

}  // namespace

TEST_CASE("proposer reports the lowest non-zero hot-standby feedback of streaming acceptors",
          "[core][proposer][replication]") {
    ZeroWal wal;
    ProposerConfig cfg;
    cfg.acceptor_count = 3;
    cfg.greeting.system_id = 1;
    cfg.timeline_start_lsn = 0x1000;
    Proposer p(cfg, &wal);
    TimeMs now = 1000;
    p.start(now, 0x3000);
    for (std::size_t k = 0; k < 3; ++k) p.on_connected(k, now);
    for (std::size_t k = 0; k < 3; ++k) deliver(p, k, AcceptorGreeting{k + 1, 0, 0, 0, 0, 0, 0, 0, {}}, now);
    const Term term = p.term();
    VoteResponse v;
    v.term = term;
    v.vote_granted = true;
    for (std::size_t k = 0; k < 3; ++k) deliver(p, k, v, now);
    REQUIRE(p.state() == ProposerState::kElected);
    CHECK(p.status().hs_xmin == 0);

    // Acceptor 0 has no feedback, 1 reports 500 (epoch 1), 2 reports 700.
    deliver(p, 0, AppendResponse{term, 0x1000, 0, 0, 0}, now);
    deliver(p, 1, AppendResponse{term, 0x1000, 0, (1ull << 32) | 500, 0}, now);
    deliver(p, 2, AppendResponse{term, 0x1000, 0, (1ull << 32) | 700, (1ull << 32) | 90}, now);
    ProposerStatus st = p.status();
    CHECK(st.hs_xmin == ((1ull << 32) | 500));
    CHECK(st.hs_catalog_xmin == ((1ull << 32) | 90));

    // Feedback moves with the acceptors' reports.
    deliver(p, 1, AppendResponse{term, 0x3000, 0, 0, 0}, now);
    CHECK(p.status().hs_xmin == ((1ull << 32) | 700));
    deliver(p, 2, AppendResponse{term, 0x3000, 0x3000, 0, 0}, now);
    CHECK(p.status().hs_xmin == 0);
    CHECK(p.status().hs_catalog_xmin == 0);
}
