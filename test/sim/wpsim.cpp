// wpsim: deterministic simulation of the proposer/acceptor consensus.
//
// 1-2 proposers (each a PostgreSQL primary with its own local WAL) and 3 or 5
// acceptors on a simulated network: per-connection FIFO queues (like TCP),
// random delivery order across connections, dropped connections, network
// partitions, acceptor crashes that lose unflushed WAL, proposer restarts,
// group commit (write, later flush, then respond). Messages already sent on a
// connection that the proposer has given up may still arrive later (TCP
// delivers what it has buffered). An acceptor's process may crash while the
// OS keeps its page cache, and a power loss later drops what was never
// synced. A member's timeline may be deleted and recreated, and a primary's
// data directory may be restored from a snapshot of another's. A seeded
// scheduler picks every step, so a seed replays identically. After every step the invariants
// 1-4, 6 and 7 of docs/consensus.md are checked against a record of every
// committed byte. With --failover, primaries run on PostgreSQL timelines and
// failovers happen: a sync proposer fences the old timelines and commits the
// quorum's WAL, a standby (caught up or lagging) is promoted on the next
// timeline, and stopped old primaries come back; the failover invariants
// (docs/consensus.md) are checked too.
//
// Usage: wpsim [--seeds A..B] [--seed N] [--trace] [--break MODE] [--failover] (see --help)
// Exit: 0 all schedules passed, 1 an invariant violation, 2 usage error.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "walproposer/acceptor.h"
#include "walproposer/acceptor_session.h"
#include "walproposer/lsn.h"
#include "walproposer/messages.h"
#include "walproposer/proposer.h"
#include "walproposer/term_history.h"

namespace {

using namespace wp;

constexpr Lsn kTimelineStart = 0x1000000;  // first LSN of the simulated timeline
constexpr std::uint64_t kSystemId = 7300000000000000001ull;

enum class BreakMode {
    kNone,
    kQuorum,
    kOwnTerm,
    kLateElected,
    kUnsyncedRestart,
    kDelete,
    kContent,
    kNoTrim,
    kInherit,
    kOneStreamer
};

struct BreakName {
    BreakMode mode;
    const char* name;
    const char* what;
};
const BreakName kBreakModes[] = {
    {BreakMode::kQuorum, "quorum", "majority of N/2"},
    {BreakMode::kOwnTerm, "own-term", "commit old-term WAL by counting replicas (Raft figure 8)"},
    {BreakMode::kLateElected, "late-elected", "acceptor cuts at a stale ProposerElected's start"},
    {BreakMode::kUnsyncedRestart, "unsynced-restart",
     "restart trusts WAL still only in the page cache"},
    {BreakMode::kDelete, "delete", "a deleted and recreated member starts again at term 0"},
    {BreakMode::kContent, "content", "no byte comparison of the donor's WAL with the primary's"},
    {BreakMode::kNoTrim, "no-trim", "term histories are never trimmed (use with --crash-loop)"},
    {BreakMode::kInherit, "inherit",
     "a promoted standby inherits the quorum's WAL unchecked (implies --failover)"},
    {BreakMode::kOneStreamer, "one-streamer",
     "any connection may append in the accepted term (no one streamer per timeline)"},
};

struct Rng {
    std::uint64_t s;
    explicit Rng(std::uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull) {}
    std::uint64_t next() {  // splitmix64
        std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    std::uint64_t below(std::uint64_t n) { return n ? next() % n : 0; }
    bool chance(unsigned percent) { return below(100) < percent; }
};

struct Violation {
    std::string invariant;
    std::string detail;
};

// In-memory acceptor storage with a page cache: written bytes survive a
// process crash (they are in the OS page cache) but only synced bytes survive
// a power loss.
class MemStorage : public AcceptorStorage {
public:
    AcceptorDurableState durable;
    Lsn start = kInvalidLsn;  // 0 = no WAL
    std::vector<std::uint8_t> bytes;  // [start, start + bytes.size()) written (page cache)
    Lsn synced_end = kInvalidLsn;     // on disk
    Lsn flushed_end = kInvalidLsn;    // what the acceptor was told is durable

    Lsn written_end() const { return start ? start + bytes.size() : kInvalidLsn; }
    Status persist_state(const AcceptorDurableState& s) override {
        durable = s;
        return Status();
    }
    Status write_wal(Lsn begin, const std::uint8_t* data, std::size_t size) override {
        if (!start || begin != written_end()) return Status::error("write not at end of WAL");
        bytes.insert(bytes.end(), data, data + size);
        return Status();
    }
    Status flush_wal() override {
        flushed_end = synced_end = written_end();
        return Status();
    }
    Status read_wal(Lsn begin, Lsn end, std::vector<std::uint8_t>& out) override {
        if (!start || begin < start || end > flushed_end || begin > end)
            return Status::error("read outside the stored WAL");
        out.insert(out.end(), bytes.begin() + static_cast<long>(begin - start),
                   bytes.begin() + static_cast<long>(end - start));
        return Status();
    }
    Status truncate_wal(Lsn end) override {
        if (!start || end < start) {
            start = end;
            bytes.clear();
        } else {
            if (end > written_end()) return Status::error("truncate beyond end of WAL");
            bytes.resize(end - start);
        }
        flushed_end = synced_end = end;
        return Status();
    }
    Lsn flush_lsn() const override { return flushed_end; }
    // Start-up after a process crash: the daemon finds every written byte in
    // its files. It must sync them before it reports them as flushed.
    void recover(bool sync_first) {
        if (sync_first) synced_end = written_end();
        flushed_end = written_end();
    }
    // Power loss: the page cache is gone.
    void power_loss() {
        if (start) bytes.resize(synced_end - start);
        flushed_end = synced_end;
    }
    // Synced bytes [from, to) equal `wal` (indexed from kTimelineStart)?
    bool durable_matches(const std::vector<std::uint8_t>& wal, Lsn from, Lsn to) const {
        if (from >= to) return true;
        if (from < start || to > synced_end) return false;
        if (to - kTimelineStart > wal.size()) return false;
        return to == from || std::memcmp(bytes.data() + (from - start), wal.data() + (from - kTimelineStart), to - from) == 0;
    }
};

struct SimAcceptor {
    MemStorage storage;
    std::unique_ptr<Acceptor> acceptor;
    bool up = true;
    Lsn acked_flush = kInvalidLsn;   // highest flush LSN reported since the last truncation
    Term granted_term = 0;           // highest term a granted vote was sent for
    Lsn seen_commit = kInvalidLsn;   // in-memory commit_lsn last observed (this life)
    Lsn seen_durable_commit = kInvalidLsn;
    std::vector<int> pending_flush;  // connections whose session has a batch open
    bool recreated = false;          // its timeline was deleted and created again
    // Which session streams (shared by this acceptor's sessions; a process
    // state: reset by a crash).
    StreamingSlot slot;
    // The simulator's own record (for the one-streamer invariant): conn + 1
    // of the connection whose ProposerElected this acceptor accepted last in
    // this life (0 = none).
    std::uint64_t stream_owner = 0;
};

struct SimProposer;

class VectorWal : public WalReader {
public:
    const std::vector<std::uint8_t>* wal = nullptr;
    Status read_wal(Lsn begin, Lsn end, std::vector<std::uint8_t>& out) override {
        if (begin < kTimelineStart || end < begin || end - kTimelineStart > wal->size())
            return Status::error("WAL [" + format_lsn(begin) + ", " + format_lsn(end) + ") not available");
        out.insert(out.end(), wal->begin() + (begin - kTimelineStart), wal->begin() + (end - kTimelineStart));
        return Status();
    }
};

struct SimProposer {
    int index = 0;
    int incarnation = 0;
    // Failover model: the PostgreSQL timeline this node runs on, whether it is
    // a sync proposer, and for a promoted standby its switch point.
    std::uint32_t pg_timeline = 1;
    bool sync = false;
    Lsn inherited_wal_end = kInvalidLsn;
    bool inheriting = false;        // this incarnation started with no own terms and a switch point
    Term elected_term = 0;          // last term this incarnation was elected in
    Lsn max_commit = kInvalidLsn;   // highest commit_lsn it ever reported
    std::vector<std::uint8_t> wal;  // local WAL from kTimelineStart; survives restarts
    TermHistory persisted_history;  // driver-persisted own term history
    VectorWal reader;
    std::unique_ptr<Proposer> proposer;
    std::vector<int> conn;          // per acceptor: connection id or -1
    // A sync proposer has no WAL: `wal` is rebuilt from the acceptors that
    // accepted its term (they must agree byte for byte).
    bool running() const { return proposer != nullptr; }
    Lsn flush_end() const { return kTimelineStart + wal.size(); }
};

struct Conn {
    int proposer = 0;
    int acceptor = 0;
    bool open = true;
    bool established = false;
    // Acceptor side of the connection (id conn + 1): from the connect until
    // the acceptor sees the connection end (or crashes).
    std::unique_ptr<AcceptorSession> session;
    // The proposer gave this connection up, but the acceptor has not noticed:
    // what was already sent may still arrive (late); replies go nowhere.
    bool zombie = false;
    std::deque<std::vector<std::uint8_t>> to_acceptor, to_proposer;
};

constexpr unsigned kEpisodesPerSeed = 10;
constexpr std::size_t kMaxProposers = 12;
constexpr unsigned kMaxFailovers = 3;  // per schedule (each adds at most two proposers)

struct Stats {
    std::uint64_t seeds = 0, schedules = 0, steps = 0, elections = 0, commits = 0,
                  committed_bytes = 0, crashes = 0, superseded = 0, messages = 0,
                  old_term_commits = 0, late_messages = 0, power_losses = 0, recreated = 0,
                  clones = 0, failovers = 0, syncs = 0, syncs_done = 0, syncs_failed = 0,
                  promotions = 0, lagging_promotions = 0, promoted_elected = 0, fenced = 0,
                  refused_lagging = 0, comebacks = 0;
};

class World {
public:
    // One episode: a fresh cluster whose whole life is determined by (seed, episode).
  World(std::uint64_t seed, unsigned episode, BreakMode mode, bool verbose, bool failover)
      : rng_(seed * 1000003ull + episode),
        seed_(seed * 1000003ull + episode),
        mode_(mode),
        verbose_(verbose),
        failover_(failover) {}

  std::optional<Violation> run(Stats& stats);
  // A primary in a crash loop: one proposer, three acceptors, restarted
  // after each commit (sometimes writing WAL in between) until `elections`
  // elections; every history must stay bounded and elections must go on.
  std::optional<Violation> run_crash_loop(Stats& stats, std::uint64_t elections);
  const std::vector<std::string>& trace() const { return trace_; }

private:
    void note(const std::string& line) {
        trace_.push_back("[" + std::to_string(step_) + " t=" + std::to_string(now_) + "] " + line);
    }
    void fail(const std::string& invariant, const std::string& detail) {
        if (!violation_) violation_ = Violation{invariant, detail};
        note("VIOLATION of " + invariant + ": " + detail);
    }
    std::size_t majority() const { return acceptors_.size() / 2 + 1; }

    void setup();
    void restart_proposer(int p);
    void apply(int p, ProposerOutput out);
    void open_connection(int p, int k);
    void close_connection(int c, bool notify_proposer, const std::string& why);
    void deliver_to_acceptor(int c);
    // The acceptor notices that connection `c` ended: its session closes.
    void end_session(int c);
    // An AppendResponse of a finished batch on connection `c`.
    void send_append_response(int c, const AppendResponse& r);
    void deliver_to_proposer(int c);
    void acceptor_flush(int k);
    void crash_acceptor(int k, bool power_loss);
    void recreate_acceptor(int k);
    void clone_proposer(int from, int to);
    AcceptorConfig acceptor_config(int k) const;
    void restart_acceptor(int k);
    void generate_wal(int p);
    void check_invariants();
    // Failover model (--failover).
    void stop_proposer(int p, const std::string& why);
    int add_proposer();
    void begin_failover();
    void start_sync();
    void promote_standby();
    void failover_step(bool faults);
    void refresh_sync_wal(int p);
    void on_sync_done(int p);
    void on_commit(int p, Lsn commit);
    void on_elected(int p);
    void step();

    Rng rng_;
    std::uint64_t seed_;
    BreakMode mode_;
    bool verbose_;
    TimeMs now_ = 1000;
    std::uint64_t step_ = 0;
    std::uint64_t total_steps_ = 0;
    std::vector<SimAcceptor> acceptors_;
    std::vector<SimProposer> proposers_;
    std::vector<Conn> conns_;
    std::vector<std::vector<bool>> link_up_;  // [proposer][acceptor]
    std::vector<std::pair<int, int>> pending_connects_;
    std::vector<std::uint8_t> committed_;     // committed bytes from kTimelineStart
    // Highest commit_lsn per committing term, sorted by term, with the running
    // maximum over all lower terms: what a proposer elected later must hold.
    struct CommitByTerm {
        Term term;
        Lsn max_commit;
        Lsn prefix_max;
    };
    std::vector<CommitByTerm> commits_by_term_;
    void record_commit(Term term, Lsn commit);
    Lsn committed_before_term(Term term) const;
    std::map<Term, std::pair<int, int>> elected_;  // term -> (proposer, incarnation)
    std::vector<std::string> trace_;
    std::optional<Violation> violation_;
    Stats* stats_ = nullptr;
    unsigned fault_percent_ = 0;
    bool nemesis_ = false;                // flip leadership soon after each election
    std::uint64_t flip_at_step_ = 0;      // 0 = none pending
    int flip_towards_ = -1;               // proposer that gets the majority at the flip
    unsigned targeted_elected_drop_ = 0;  // % of ProposerElected deliveries replaced by a drop
    unsigned targeted_append_drop_ = 0;   // same for AppendRequest
    unsigned zombie_percent_ = 0;         // % of closed connections whose messages still arrive
    bool recreated_one_ = false;          // at most one deleted/recreated member per schedule
    // Failover model.
    bool failover_ = false;
    unsigned failovers_ = 0;            // failovers begun in this schedule
    std::uint32_t max_timeline_ = 1;    // highest PostgreSQL timeline of any primary so far
    int sync_p_ = -1;                   // the running sync proposer (-1 = none)
    std::uint64_t sync_deadline_ = 0;   // step at which the operator gives the sync up
    std::uint64_t promote_at_ = 0;      // step of a scheduled promotion (0 = none)
    std::uint32_t fence_ = 0;           // fence a completed sync put on a quorum
    Lsn fence_sync_lsn_ = kInvalidLsn;  // that sync's sync_lsn
    // (proposer, incarnation, term) of a fenced primary -> acceptors that
    // accepted its ProposerElected after the fence was in place.
    std::map<std::tuple<int, int, Term>, std::vector<int>> fenced_accepts_;
};

AcceptorConfig World::acceptor_config(int k) const {
    AcceptorConfig cfg;
    cfg.node_id = static_cast<NodeId>(k + 1);
    cfg.unsafe_test_only_trust_elected_start = mode_ == BreakMode::kLateElected;
    return cfg;
}

void World::setup() {
    const int n_acceptors = rng_.chance(70) ? 3 : 5;
    const int n_proposers = rng_.chance(30) ? 1 : 2;
    fault_percent_ = 2 + static_cast<unsigned>(rng_.below(9));
    nemesis_ = n_proposers == 2 && rng_.chance(70);
    targeted_elected_drop_ = static_cast<unsigned>(rng_.below(70));
    targeted_append_drop_ = static_cast<unsigned>(rng_.below(4));
    zombie_percent_ = rng_.chance(60) ? static_cast<unsigned>(rng_.below(80)) : 0;
    acceptors_.resize(n_acceptors);
    for (int k = 0; k < n_acceptors; ++k)
        acceptors_[k].acceptor = std::make_unique<Acceptor>(
            acceptor_config(k), &acceptors_[k].storage, AcceptorDurableState{});
    // Proposers hold pointers into their SimProposer: never reallocate.
    proposers_.reserve(kMaxProposers);
    proposers_.resize(n_proposers);
    link_up_.assign(n_proposers, std::vector<bool>(n_acceptors, true));
    note("schedule: " + std::to_string(n_proposers) + " proposer(s), " + std::to_string(n_acceptors) +
         " acceptors, fault rate " + std::to_string(fault_percent_) + "%");
    if (n_proposers == 2 && rng_.chance(50)) {
        for (int k = 0; k < n_acceptors; ++k) {
            const std::size_t side = rng_.below(2);
            link_up_[0][k] = side == 0;
            link_up_[1][k] = side == 1;
        }
    }
    for (int p = 0; p < n_proposers; ++p) {
        proposers_[p].index = p;
        proposers_[p].conn.assign(n_acceptors, -1);
        // Some initial local WAL.
        const std::size_t initial = rng_.below(200);
        for (std::size_t i = 0; i < initial; ++i) generate_wal(p);
        restart_proposer(p);
    }
}

void World::generate_wal(int p) {
    SimProposer& sp = proposers_[p];
    const std::size_t n = 1 + rng_.below(rng_.chance(10) ? 400 : 60);
    for (std::size_t i = 0; i < n; ++i) {
        const Lsn lsn = sp.flush_end();
        // Content depends on which primary wrote it, so divergence is visible.
        std::uint64_t h = (lsn * 0x9E3779B97F4A7C15ull) ^ (static_cast<std::uint64_t>(p + 1) * 0xC2B2AE3D27D4EB4Full);
        h ^= h >> 29;
        sp.wal.push_back(static_cast<std::uint8_t>(h));
    }
    if (sp.proposer) apply(p, sp.proposer->on_wal_available(sp.flush_end(), now_));
}

void World::restart_proposer(int p) {
    SimProposer& sp = proposers_[p];
    for (std::size_t k = 0; k < sp.conn.size(); ++k)
        if (sp.conn[k] >= 0) close_connection(sp.conn[k], false, "proposer restart");
    for (auto it = pending_connects_.begin(); it != pending_connects_.end();)
        it = (it->first == p) ? pending_connects_.erase(it) : it + 1;
    ++sp.incarnation;
    ProposerConfig cfg;
    cfg.acceptor_count = acceptors_.size();
    // A sync proposer has no PostgreSQL identity: system id 0 (the core sets
    // kGreetingFlagSync) and no WalReader.
    cfg.greeting.system_id = sp.sync ? 0 : kSystemId;
    cfg.greeting.pg_version = 150004;
    cfg.greeting.wal_segment_size = sp.sync ? 0 : 16 * 1024 * 1024;
    cfg.greeting.pg_timeline = sp.sync ? 0 : sp.pg_timeline;
    cfg.greeting.proposer_id[0] = static_cast<std::uint8_t>(p + 1);
    cfg.sync = sp.sync;
    cfg.inherited_wal_end = sp.inherited_wal_end;
    sp.inheriting = !sp.sync && sp.persisted_history.empty() && sp.inherited_wal_end != kInvalidLsn;
    if (mode_ == BreakMode::kInherit && sp.inherited_wal_end != kInvalidLsn)
        cfg.unsafe_test_only_inherit_unchecked = true;
    cfg.greeting.proposer_id[1] = static_cast<std::uint8_t>(sp.incarnation);
    cfg.own_term_history = sp.persisted_history;
    cfg.timeline_start_lsn = kTimelineStart;
    cfg.reconnect_interval_ms = 30;
    cfg.response_timeout_ms = 400;
    cfg.election_timeout_ms = 150 + rng_.below(300);
    cfg.backoff_min_ms = 10;
    cfg.backoff_max_ms = 200;
    cfg.heartbeat_interval_ms = 60;
    cfg.max_append_bytes = 16 + rng_.below(64);
    cfg.max_inflight_bytes = 256;
    cfg.random_seed = seed_ * 31 + static_cast<std::uint64_t>(p) * 7 + static_cast<std::uint64_t>(sp.incarnation);
    if (mode_ == BreakMode::kQuorum) cfg.unsafe_test_only_quorum_override = acceptors_.size() / 2;
    if (mode_ == BreakMode::kOwnTerm) cfg.unsafe_test_only_commit_old_terms = true;
    if (mode_ == BreakMode::kContent) cfg.unsafe_test_only_skip_content_check = true;
    if (mode_ == BreakMode::kNoTrim) cfg.unsafe_test_only_keep_full_history = true;
    sp.reader.wal = &sp.wal;
    sp.proposer = std::make_unique<Proposer>(cfg, sp.sync ? nullptr : &sp.reader);
    if (sp.sync) {
        sp.wal.clear();  // rebuilt from the acceptors of its term
        sp.elected_term = 0;
    }
    note("proposer " + std::to_string(p) + (sp.sync ? " (SYNC)" : "") +
         " (re)starts, incarnation " + std::to_string(sp.incarnation) + ", PG timeline " +
         std::to_string(sp.pg_timeline) +
         (sp.inheriting ? ", inherited WAL up to " + format_lsn(sp.inherited_wal_end)
                        : std::string()) +
         ", local WAL ends at " + format_lsn(sp.flush_end()) + ", own history " +
         format_history(sp.persisted_history));
    apply(p, sp.proposer->start(now_, sp.sync ? kInvalidLsn : sp.flush_end()));
}

void World::apply(int p, ProposerOutput out) {
    SimProposer& sp = proposers_[p];
    for (const LogLine& l : out.log)
        if (verbose_ || l.level >= LogLevel::kWarning) note("P" + std::to_string(p) + " log: " + l.text);
    if (out.persist_own_term_history) sp.persisted_history = *out.persist_own_term_history;
    for (std::size_t k : out.disconnect)
        if (sp.conn[k] >= 0) close_connection(sp.conn[k], false, "proposer closed it");
    for (auto it = pending_connects_.begin(); it != pending_connects_.end();) {
        bool dropped = false;
        for (std::size_t k : out.disconnect)
            if (it->first == p && it->second == static_cast<int>(k)) dropped = true;
        it = dropped ? pending_connects_.erase(it) : it + 1;
    }
    for (OutgoingMessage& m : out.messages) {
        const int c = sp.conn[m.acceptor];
        if (c < 0 || !conns_[c].open || !conns_[c].established) {
            fail("driver contract", "proposer sent to acceptor " + std::to_string(m.acceptor) + " without a connection");
            continue;
        }
        conns_[c].to_acceptor.push_back(std::move(m.payload));
    }
    for (std::size_t k : out.connect) {
        if (sp.conn[k] >= 0) close_connection(sp.conn[k], false, "reconnect");
        pending_connects_.push_back({p, static_cast<int>(k)});
    }
    if (out.state_changed) {
        note("P" + std::to_string(p) + " state -> " + to_string(*out.state_changed) + " term " +
             std::to_string(sp.proposer->term()));
        if (*out.state_changed == ProposerState::kElected) on_elected(p);
        if (*out.state_changed == ProposerState::kSuperseded) {
            ++stats_->superseded;
            const ProposerStatus st = sp.proposer->status();
            if (st.superseded_reason.rfind("fenced", 0) == 0) ++stats_->fenced;
            if (st.superseded_reason.rfind("promoted before catching up", 0) == 0)
                ++stats_->refused_lagging;
            note("P" + std::to_string(p) + " superseded by term " + std::to_string(st.superseded_by_term) +
                 " at " + format_lsn(st.superseded_at_lsn) + ": " + st.superseded_reason);
        }
    }
    if (out.commit_lsn) on_commit(p, *out.commit_lsn);
}

void World::on_elected(int p) {
    SimProposer& sp = proposers_[p];
    ++stats_->elections;
    const Term t = sp.proposer->term();
    if (const auto e = elected_.find(t); e != elected_.end()) {
        fail("invariant 1 (one proposer per term)",
             "term " + std::to_string(t) + " elected proposer " + std::to_string(e->second.first) + "#" +
                 std::to_string(e->second.second) + " and now proposer " + std::to_string(p) + "#" +
                 std::to_string(sp.incarnation));
    }
    elected_[t] = {p, sp.incarnation};
    sp.elected_term = t;
    if (nemesis_ && !flip_at_step_ && p < 2) {
        flip_at_step_ = step_ + 2 + rng_.below(20);
        flip_towards_ = 1 - p;
    }
    const ProposerStatus st = sp.proposer->status();
    note("P" + std::to_string(p) + (sp.sync ? " (SYNC)" : "") + " ELECTED term " +
         std::to_string(t) + " history " + format_history(st.term_history) + " local end " +
         format_lsn(sp.flush_end()));
    if (sp.sync) {
        sp.wal.clear();  // its WAL in this term: rebuilt from the acceptors of the term
        // Failover: the sync's end (the donor's WAL) covers every byte
        // committed in earlier terms.
        if (st.term_start_lsn < committed_before_term(t))
            fail("failover: sync_lsn below the committed WAL",
                 "sync proposer " + std::to_string(p) + " elected in term " + std::to_string(t) +
                     " syncs to " + format_lsn(st.term_start_lsn) + " but WAL up to " +
                     format_lsn(committed_before_term(t)) + " was committed in earlier terms");
        return;
    }
    if (sp.inheriting) {
        ++stats_->promoted_elected;
        // Failover: a promoted standby whose switch point lies below WAL
        // committed in earlier terms lacks committed WAL: it must be refused.
        if (committed_before_term(t) > sp.inherited_wal_end)
            fail("failover: lagging promoted standby elected",
                 "proposer " + std::to_string(p) + " (PG timeline " +
                     std::to_string(sp.pg_timeline) + ", switch point " +
                     format_lsn(sp.inherited_wal_end) + ") elected in term " + std::to_string(t) +
                     " but WAL up to " + format_lsn(committed_before_term(t)) +
                     " was committed in earlier terms");
        sp.inheriting = false;  // from now on it has terms of its own
    }
    // Invariants 2 and 6: a primary elected in a later term than a commit holds
    // every byte of it. (A proposer may still complete an election in a stale
    // term; the acceptors' higher terms keep it from committing anything.)
    const Lsn must_hold = std::max(kTimelineStart, committed_before_term(t));
    const std::size_t need = must_hold - kTimelineStart;
    if (sp.wal.size() < need || (need > 0 && std::memcmp(sp.wal.data(), committed_.data(), need) != 0)) {
        std::size_t i = 0;
        while (i < need && i < sp.wal.size() && sp.wal[i] == committed_[i]) ++i;
        fail("invariant 2/6 (committed WAL lost: a primary whose WAL diverges was elected)",
             "proposer " + std::to_string(p) + " elected in term " + std::to_string(t) +
                 " but its WAL differs from the WAL committed in earlier terms at " + format_lsn(kTimelineStart + i) +
                 " (committed up to " + format_lsn(must_hold) + ")");
    }
    // The same, stated for failover (a promoted standby's WAL is a prefix of
    // the committed WAL plus its own): the elected proposer's own WAL holds
    // every byte committed in earlier terms below its term start.
    {
        const Lsn below = std::min(st.term_start_lsn, committed_before_term(t));
        if (below > kTimelineStart) {
            const std::size_t n = below - kTimelineStart;
            if (sp.wal.size() < n || std::memcmp(sp.wal.data(), committed_.data(), n) != 0)
                fail("failover: elected proposer lacks committed WAL below its term start",
                     "proposer " + std::to_string(p) + " elected in term " + std::to_string(t) +
                         " (term start " + format_lsn(st.term_start_lsn) +
                         ") does not hold the committed WAL up to " + format_lsn(below));
        }
    }
}

void World::record_commit(Term term, Lsn commit) {
    auto it = std::lower_bound(commits_by_term_.begin(), commits_by_term_.end(), term,
                               [](const CommitByTerm& c, Term t) { return c.term < t; });
    if (it == commits_by_term_.end() || it->term != term) it = commits_by_term_.insert(it, CommitByTerm{term, commit, 0});
    it->max_commit = std::max(it->max_commit, commit);
    // Recompute running maxima from here on (usually just the last entry).
    Lsn running = it == commits_by_term_.begin() ? kInvalidLsn : (it - 1)->prefix_max;
    for (; it != commits_by_term_.end(); ++it) {
        running = std::max(running, it->max_commit);
        it->prefix_max = running;
    }
}

Lsn World::committed_before_term(Term term) const {
    auto it = std::lower_bound(commits_by_term_.begin(), commits_by_term_.end(), term,
                               [](const CommitByTerm& c, Term t) { return c.term < t; });
    return it == commits_by_term_.begin() ? kInvalidLsn : (it - 1)->prefix_max;
}

void World::on_commit(int p, Lsn commit) {
    SimProposer& sp = proposers_[p];
    ++stats_->commits;
    if (sp.sync) refresh_sync_wal(p);
    sp.max_commit = std::max(sp.max_commit, commit);
    if (!sp.sync && sp.pg_timeline < fence_ && commit > fence_sync_lsn_)
        fail("failover: fenced primary committed past the sync LSN",
             "proposer " + std::to_string(p) + " on PG timeline " + std::to_string(sp.pg_timeline) +
                 " (fence " + std::to_string(fence_) + ") committed " + format_lsn(commit) +
                 " beyond sync_lsn " + format_lsn(fence_sync_lsn_));
    if (commit < sp.proposer->status().term_start_lsn) {
        ++stats_->old_term_commits;
        note("P" + std::to_string(p) + " commits " + format_lsn(commit) + " below its term start " +
             format_lsn(sp.proposer->status().term_start_lsn) + " (figure-8 situation)");
    }
    if (commit < kTimelineStart || commit > sp.flush_end()) {
        fail("invariant 2 (commit beyond WAL)", "commit " + format_lsn(commit) + " outside proposer WAL");
        return;
    }
    const std::size_t len = commit - kTimelineStart;
    // Invariant 6 / quorum: the committed WAL is durable on a real majority.
    std::size_t holders = 0;
    // (A recreated member starts its WAL where it rejoined.)
    for (const SimAcceptor& a : acceptors_)
        if (a.storage.start &&
            a.storage.durable_matches(sp.wal, std::max(a.storage.start, kTimelineStart), commit))
            ++holders;
    if (holders < majority())
        fail("invariant 2/6 (commit without a quorum)",
             "proposer " + std::to_string(p) + " term " + std::to_string(sp.proposer->term()) + " confirmed commit " +
                 format_lsn(commit) + " but only " + std::to_string(holders) + " of " +
                 std::to_string(acceptors_.size()) + " acceptors durably hold that WAL");
    const std::size_t overlap = std::min(len, committed_.size());
    if (overlap > 0 && std::memcmp(sp.wal.data(), committed_.data(), overlap) != 0) {
        std::size_t i = 0;
        while (i < overlap && sp.wal[i] == committed_[i]) ++i;
        fail("invariant 2 (committed byte changed)",
             "proposer " + std::to_string(p) + " committed " + format_lsn(commit) +
                 " with WAL differing from earlier committed WAL at " + format_lsn(kTimelineStart + i));
    }
    record_commit(sp.proposer->term(), commit);
    if (len > committed_.size()) {
        stats_->committed_bytes += len - committed_.size();
        committed_.assign(sp.wal.begin(), sp.wal.begin() + len);
    }
    if (verbose_) note("P" + std::to_string(p) + " commit_lsn -> " + format_lsn(commit));
}

void World::open_connection(int p, int k) {
    SimProposer& sp = proposers_[p];
    const bool ok = acceptors_[k].up && link_up_[p][k];
    if (!ok) {
        note("P" + std::to_string(p) + " -> A" + std::to_string(k) + " connect fails");
        apply(p, sp.proposer->on_disconnected(k, now_, "connection refused"));
        return;
    }
    Conn c;
    c.proposer = p;
    c.acceptor = k;
    c.established = true;
    AcceptorSessionConfig session_config;
    session_config.unsafe_test_only_any_streamer = mode_ == BreakMode::kOneStreamer;
    c.session = std::make_unique<AcceptorSession>(conns_.size() + 1, session_config,
                                                  *acceptors_[k].acceptor, acceptors_[k].slot);
    conns_.push_back(std::move(c));
    sp.conn[k] = static_cast<int>(conns_.size() - 1);
    if (verbose_) note("P" + std::to_string(p) + " -> A" + std::to_string(k) + " connected (conn " + std::to_string(conns_.size() - 1) + ")");
    apply(p, sp.proposer->on_connected(k, now_));
}

void World::close_connection(int c, bool notify_proposer, const std::string& why) {
    Conn& conn = conns_[c];
    if (!conn.open) return;
    conn.open = false;
    conn.to_proposer.clear();
    // TCP may still deliver what was sent before the proposer gave up, unless
    // the acceptor's process is gone.
    const bool acceptor_alive = acceptors_[conn.acceptor].up && acceptors_[conn.acceptor].acceptor;
    if (acceptor_alive && !conn.to_acceptor.empty() && zombie_percent_ &&
        rng_.chance(zombie_percent_)) {
        conn.zombie = true;
    } else {
        conn.to_acceptor.clear();
        end_session(c);
    }
    SimProposer& sp = proposers_[conn.proposer];
    if (sp.conn[conn.acceptor] == c) sp.conn[conn.acceptor] = -1;
    if (verbose_ || notify_proposer)
        note("conn " + std::to_string(c) + " P" + std::to_string(conn.proposer) + "-A" +
             std::to_string(conn.acceptor) + " closed: " + why +
             (conn.zombie
                  ? " (" + std::to_string(conn.to_acceptor.size()) + " messages still in flight)"
                  : ""));
    if (notify_proposer) apply(conn.proposer, sp.proposer->on_disconnected(conn.acceptor, now_, why));
}

void World::end_session(int c) {
    Conn& conn = conns_[c];
    if (!conn.session) return;
    conn.session->close();
    conn.session.reset();
}

void World::send_append_response(int c, const AppendResponse& r) {
    Conn& conn = conns_[c];
    if (!conn.open) return;  // the proposer is gone from this connection
    SimAcceptor& sa = acceptors_[conn.acceptor];
    sa.acked_flush = std::max(sa.acked_flush, r.flush_lsn);
    if (verbose_)
        note("A" + std::to_string(conn.acceptor) + "->P" + std::to_string(conn.proposer) + " " +
             describe(r));
    conn.to_proposer.push_back(encode(r));
}

void World::deliver_to_acceptor(int c) {
    Conn& conn = conns_[c];
    std::vector<std::uint8_t> bytes = std::move(conn.to_acceptor.front());
    conn.to_acceptor.pop_front();
    ++stats_->messages;
    const int k = conn.acceptor;
    SimAcceptor& sa = acceptors_[k];
    Acceptor& acc = *sa.acceptor;
    Result<Message> decoded = decode(bytes);
    if (!decoded.ok()) {
        fail("codec", "acceptor could not decode a proposer message: " + decoded.message());
        return;
    }
    if (!conn.session) {
        fail("driver contract", "message delivered on connection " + std::to_string(c) +
                                    " that has no acceptor session");
        return;
    }
    const Message& msg = decoded.value();
    const std::string who = "A" + std::to_string(k) + "<-P" + std::to_string(conn.proposer) +
                            (conn.zombie ? " (late, conn " + std::to_string(c) + ") " : " ");
    if (conn.zombie) ++stats_->late_messages;
    if (verbose_ || conn.zombie) note(who + describe(msg));
    // The connection's rules (greeting first, one streamer, batches) are the
    // core's AcceptorSession, as in the daemon.
    AcceptorSession& session = *conn.session;
    const SessionStep st = session.handle(msg);
    for (const AppendResponse& r : st.batch) send_append_response(c, r);
    if (st.error) {
        note(who + describe(msg) + " -> error (" + session_error_kind_name(st.error->kind) +
             "): " + st.error->message);
        if (conn.zombie) {
            conn.zombie = false;
            conn.to_acceptor.clear();
            end_session(c);
        } else {
            close_connection(c, true, "acceptor error: " + st.error->message);
        }
        return;
    }
    if (st.appended) {
        if (session.pending_appends() == 1) sa.pending_flush.push_back(c);
        // One streamer per timeline: WAL is taken only from the connection
        // whose ProposerElected the acceptor accepted last.
        if (sa.stream_owner != static_cast<std::uint64_t>(c) + 1) {
            const auto& a = std::get<AppendRequest>(msg);
            fail("one streamer per timeline (an acceptor took WAL from two connections)",
                 "A" + std::to_string(k) + " wrote WAL [" + format_lsn(a.begin_lsn) + ", " +
                     format_lsn(a.begin_lsn + a.wal.size()) + ") of term " +
                     std::to_string(a.term) + " from conn " + std::to_string(c) + " (P" +
                     std::to_string(conn.proposer) + ") while " +
                     (sa.stream_owner
                          ? "conn " + std::to_string(sa.stream_owner - 1) + " (P" +
                                std::to_string(conns_[sa.stream_owner - 1].proposer) + ")"
                          : std::string("no connection")) +
                     " streams (its ProposerElected was accepted last)");
        }
    }
    if (st.reply) {
        const Message& r = *st.reply;
        if (const auto* g = std::get_if<AcceptorGreeting>(&r)) {
            sa.acked_flush = std::max(sa.acked_flush, g->flush_lsn);
        } else if (const auto* v = std::get_if<VoteResponse>(&r)) {
            if (v->vote_granted) sa.granted_term = std::max(sa.granted_term, v->term);
            sa.acked_flush = std::max(sa.acked_flush, v->flush_lsn);
        }
        if (const auto* e = std::get_if<ProposerElected>(&msg);
            e && std::get<AppendResponse>(r).term == e->term) {
            sa.stream_owner = static_cast<std::uint64_t>(c) + 1;
            sa.acked_flush = acc.flush_lsn();  // truncation may legitimately lower it
            // Log matching: what the acceptor keeps equals the elected primary's WAL.
            const SimProposer& sp = proposers_[conn.proposer];
            const Lsn from = std::max(sa.storage.start, kTimelineStart);
            // (A sync proposer's WAL is checked against its acceptors in refresh_sync_wal.)
            if (!sp.sync && sp.running() && sa.storage.start &&
                !sa.storage.durable_matches(sp.wal, from, acc.flush_lsn()) &&
                sp.proposer->state() == ProposerState::kElected && sp.proposer->term() == e->term)
                fail("invariant 6 (acceptor WAL diverges from the elected proposer's)",
                     "A" + std::to_string(k) + " kept WAL up to " + format_lsn(acc.flush_lsn()) +
                         " that differs from the WAL of proposer " + std::to_string(conn.proposer) +
                         " elected in term " + std::to_string(e->term));
            // Failover: a fenced primary is never accepted by a quorum once a
            // completed sync put the fence on one.
            if (!sp.sync && sp.pg_timeline < fence_) {
                auto& who_accepted = fenced_accepts_[{conn.proposer, sp.incarnation, e->term}];
                if (std::find(who_accepted.begin(), who_accepted.end(), k) == who_accepted.end())
                    who_accepted.push_back(k);
                if (who_accepted.size() >= majority())
                    fail("failover: fenced primary elected",
                         "proposer " + std::to_string(conn.proposer) + " on PG timeline " +
                             std::to_string(sp.pg_timeline) + " (fence " + std::to_string(fence_) +
                             ") accepted in term " + std::to_string(e->term) + " by " +
                             std::to_string(who_accepted.size()) + " acceptors");
            }
        }
        if (!conn.zombie) {  // a zombie's replies go nowhere
            if (verbose_)
                note("A" + std::to_string(k) + "->P" + std::to_string(conn.proposer) + " " +
                     describe(r));
            conn.to_proposer.push_back(encode(r));
        }
    }
    // A late connection ends at the acceptor once it has read everything.
    if (conn.zombie && conn.to_acceptor.empty()) {
        conn.zombie = false;
        end_session(c);
    }
}

void World::acceptor_flush(int k) {
    // Group commit: every open batch of this acceptor's sessions ends now
    // (the first flush makes all written WAL durable).
    SimAcceptor& sa = acceptors_[k];
    std::vector<int> pending;
    pending.swap(sa.pending_flush);
    bool flushed = false;
    for (int c : pending) {
        if (!conns_[c].session || conns_[c].session->pending_appends() == 0) continue;
        const SessionStep st = conns_[c].session->finish_batch();
        flushed = true;
        if (st.error) {
            fail("storage", st.error->message);
            return;
        }
        for (const AppendResponse& r : st.batch) send_append_response(c, r);
    }
    if (!flushed) {
        // WAL written by connections that ended before their batch did.
        Status s = sa.acceptor->flush();
        if (!s.ok()) {
            fail("storage", s.message());
            return;
        }
    }
    if (rng_.chance(20)) (void)sa.acceptor->persist_horizons();
}

void World::crash_acceptor(int k, bool power_loss) {
    SimAcceptor& sa = acceptors_[k];
    ++stats_->crashes;
    if (power_loss) ++stats_->power_losses;
    note("A" + std::to_string(k) +
         (power_loss ? " LOSES POWER" : " CRASHES (process; page cache kept)") + " (write end " +
         format_lsn(sa.storage.written_end()) + ", synced " + format_lsn(sa.storage.synced_end) +
         ")");
    sa.up = false;
    sa.pending_flush.clear();
    for (std::size_t c = 0; c < conns_.size(); ++c) {
        if (conns_[c].acceptor != k) continue;
        conns_[c].zombie = false;
        conns_[c].to_acceptor.clear();
        end_session(static_cast<int>(c));  // the process is gone: so are its sessions
        if (conns_[c].open) close_connection(static_cast<int>(c), true, "acceptor crashed");
    }
    sa.acceptor.reset();
    sa.slot = StreamingSlot{};
    sa.stream_owner = 0;
    if (power_loss) sa.storage.power_loss();
}

void World::restart_acceptor(int k) {
    SimAcceptor& sa = acceptors_[k];
    sa.storage.recover(/*sync_first=*/mode_ != BreakMode::kUnsyncedRestart);
    sa.acceptor = std::make_unique<Acceptor>(acceptor_config(k), &sa.storage, sa.storage.durable);
    sa.up = true;
    sa.seen_commit = sa.acceptor->commit_lsn();
    note("A" + std::to_string(k) + " restarts: term " + std::to_string(sa.acceptor->term()) + " flush " +
         format_lsn(sa.acceptor->flush_lsn()) + " history " + format_history(sa.acceptor->state().term_history));
    if (sa.acceptor->failed())
        fail("invariant 4 (acceptor cannot serve after a crash)",
             "A" + std::to_string(k) + ": " + sa.acceptor->failure().message());
    if (sa.acceptor->flush_lsn() < sa.acked_flush)
        fail("invariant 4 (acknowledged flush lost in a crash)",
             "A" + std::to_string(k) + " acknowledged " + format_lsn(sa.acked_flush) + " but restarted at " +
                 format_lsn(sa.acceptor->flush_lsn()));
    if (sa.acceptor->term() < sa.granted_term)
        fail("invariant 4 (granted vote lost in a crash)",
             "A" + std::to_string(k) + " granted term " + std::to_string(sa.granted_term) + " but restarted with term " +
                 std::to_string(sa.acceptor->term()));
}

void World::recreate_acceptor(int k) {
    // DELETE of the timeline and a new one created by the next greeting: the
    // WAL and the control file are gone; the tombstone keeps the term and
    // the failover fence.
    SimAcceptor& sa = acceptors_[k];
    const Term tombstone_term = sa.storage.durable.term;
    const std::uint32_t tombstone_fence = sa.storage.durable.min_pg_timeline;
    crash_acceptor(k, /*power_loss=*/false);
    ++stats_->recreated;
    recreated_one_ = true;
    sa.storage = MemStorage{};
    sa.storage.durable.term = mode_ == BreakMode::kDelete ? 0 : tombstone_term;
    sa.storage.durable.min_pg_timeline = tombstone_fence;
    sa.acked_flush = kInvalidLsn;
    sa.seen_commit = sa.seen_durable_commit = kInvalidLsn;
    sa.recreated = true;
    sa.acceptor = std::make_unique<Acceptor>(acceptor_config(k), &sa.storage, sa.storage.durable);
    sa.up = true;
    note("A" + std::to_string(k) + " timeline DELETED and recreated empty, term " +
         std::to_string(sa.acceptor->term()));
}

void World::clone_proposer(int from, int to) {
    // The data directory of `to` is replaced by a snapshot of `from`'s (a
    // restored backup started as a primary): the same own terms and a prefix
    // of the same WAL; from here on it writes WAL of its own.
    SimProposer& src = proposers_[from];
    SimProposer& dst = proposers_[to];
    const std::size_t keep = static_cast<std::size_t>(rng_.below(src.wal.size() + 1));
    dst.wal.assign(src.wal.begin(), src.wal.begin() + static_cast<long>(keep));
    dst.persisted_history = src.persisted_history;
    ++stats_->clones;
    note("P" + std::to_string(to) + " data directory RESTORED from a snapshot of P" +
         std::to_string(from) + " at " + format_lsn(kTimelineStart + keep));
    restart_proposer(to);
}

void World::stop_proposer(int p, const std::string& why) {
    SimProposer& sp = proposers_[p];
    if (!sp.running()) return;
    for (std::size_t k = 0; k < sp.conn.size(); ++k)
        if (sp.conn[k] >= 0) close_connection(sp.conn[k], false, why);
    for (auto it = pending_connects_.begin(); it != pending_connects_.end();)
        it = (it->first == p) ? pending_connects_.erase(it) : it + 1;
    sp.proposer.reset();
    note("P" + std::to_string(p) + (sp.sync ? " (SYNC)" : "") + " STOPS: " + why);
}

int World::add_proposer() {
    const int p = static_cast<int>(proposers_.size());
    proposers_.emplace_back();
    SimProposer& sp = proposers_.back();
    sp.index = p;
    sp.conn.assign(acceptors_.size(), -1);
    link_up_.push_back(std::vector<bool>(acceptors_.size(), true));
    return p;
}

void World::begin_failover() {
    ++failovers_;
    ++stats_->failovers;
    note("FAILOVER " + std::to_string(failovers_) + " begins");
    // The old primaries: mostly stopped (crashed, or shut down by the
    // operator); one still running keeps trying (it was only cut off).
    for (std::size_t p = 0; p < proposers_.size(); ++p)
        if (proposers_[p].running() && !proposers_[p].sync && rng_.chance(60))
            stop_proposer(static_cast<int>(p), "failover: the old primary is down");
    if (rng_.chance(75)) {
        start_sync();
    } else {
        note("failover without a sync");
        promote_at_ = step_ + 1 + rng_.below(20);
    }
}

void World::start_sync() {
    const int p = add_proposer();
    proposers_[p].sync = true;
    ++stats_->syncs;
    sync_p_ = p;
    // The operator gives the sync up after a while (crashes, partitions).
    sync_deadline_ = step_ + 100 + rng_.below(400);
    restart_proposer(p);
}

void World::promote_standby() {
    // The standby replayed what the safekeepers serve: WAL below their
    // commit_lsn. Caught up: the highest such LSN; lagging: lower.
    Lsn known = kTimelineStart;
    for (const SimAcceptor& a : acceptors_)
        known = std::max(
            known, a.up && a.acceptor ? a.acceptor->commit_lsn() : a.storage.durable.commit_lsn);
    known = std::min<Lsn>(known, kTimelineStart + committed_.size());
    Lsn switch_point = known;
    if (known > kTimelineStart && rng_.chance(40)) {
        const Lsn range = known - kTimelineStart;
        const Lsn lag =
            rng_.chance(70) ? 1 + rng_.below(std::min<Lsn>(range, 200)) : 1 + rng_.below(range);
        switch_point = known - lag;
        ++stats_->lagging_promotions;
    }
    const int p = add_proposer();
    SimProposer& sp = proposers_[p];
    sp.wal.assign(committed_.begin(),
                  committed_.begin() + static_cast<long>(switch_point - kTimelineStart));
    sp.pg_timeline = ++max_timeline_;
    sp.inherited_wal_end = switch_point;
    ++stats_->promotions;
    note("PROMOTION: P" + std::to_string(p) + " is a standby promoted to PG timeline " +
         std::to_string(sp.pg_timeline) + " at " + format_lsn(switch_point) +
         (switch_point < known
              ? " (lagging; the safekeepers committed up to " + format_lsn(known) + ")"
              : " (caught up)") +
         (fence_ ? ", fence " + std::to_string(fence_) : std::string()));
    // Its first WAL of its own on the new timeline.
    const std::size_t writes = 1 + rng_.below(4);
    for (std::size_t i = 0; i < writes; ++i) generate_wal(p);
    restart_proposer(p);
}

void World::refresh_sync_wal(int p) {
    // Acceptors that accepted the sync proposer's term hold its history up to
    // their flush LSN: they agree byte for byte, and together give its WAL.
    SimProposer& sp = proposers_[p];
    const Term t = sp.elected_term;
    if (t == 0) return;
    for (std::size_t k = 0; k < acceptors_.size(); ++k) {
        const SimAcceptor& a = acceptors_[k];
        if (!a.up || !a.acceptor || !a.storage.start) continue;
        const TermHistory& h = a.acceptor->state().term_history;
        if (h.empty() || h.back().term != t) continue;
        const Lsn from = std::max(a.storage.start, kTimelineStart);
        const Lsn flush = a.storage.flushed_end;
        const Lsn known = sp.flush_end();
        const Lsn common = std::min(flush, known);
        if (common > from && !a.storage.durable_matches(sp.wal, from, common))
            fail("invariant 6 (acceptor WAL diverges from the elected proposer's)",
                 "A" + std::to_string(k) + " holds WAL up to " + format_lsn(flush) +
                     " in the term " + std::to_string(t) + " of sync proposer " +
                     std::to_string(p) + " that differs from another acceptor of that term");
        if (flush > known && a.storage.start <= kTimelineStart)
            sp.wal.insert(sp.wal.end(),
                          a.storage.bytes.begin() + static_cast<long>(known - a.storage.start),
                          a.storage.bytes.begin() + static_cast<long>(flush - a.storage.start));
    }
}

void World::on_sync_done(int p) {
    SimProposer& sp = proposers_[p];
    refresh_sync_wal(p);
    const ProposerStatus st = sp.proposer->status();
    note("P" + std::to_string(p) + " (SYNC) DONE: sync_lsn " + format_lsn(st.sync_lsn) +
         ", fence " + std::to_string(st.fence_pg_timeline));
    // Everything any primary committed lies at or below sync_lsn ...
    const Lsn committed_end = kTimelineStart + committed_.size();
    if (committed_end > st.sync_lsn)
        fail("failover: sync_done below committed WAL",
             "sync proposer " + std::to_string(p) + " done at sync_lsn " + format_lsn(st.sync_lsn) +
                 " but WAL up to " + format_lsn(committed_end) + " was committed");
    for (const SimProposer& q : proposers_)
        if (!q.sync && q.max_commit > st.sync_lsn)
            fail("failover: sync_done below committed WAL",
                 "sync proposer " + std::to_string(p) + " done at sync_lsn " +
                     format_lsn(st.sync_lsn) + " but proposer " + std::to_string(q.index) +
                     " had commit_lsn " + format_lsn(q.max_commit));
    // ... and a quorum holds the WAL up to sync_lsn.
    std::size_t holders = 0;
    for (const SimAcceptor& a : acceptors_)
        if (a.storage.start && a.storage.durable_matches(
                                   sp.wal, std::max(a.storage.start, kTimelineStart), st.sync_lsn))
            ++holders;
    if (holders < majority())
        fail("failover: sync_done without a quorum holding sync_lsn",
             "only " + std::to_string(holders) + " of " + std::to_string(acceptors_.size()) +
                 " acceptors durably hold the synced WAL up to " + format_lsn(st.sync_lsn));
    if (st.fence_pg_timeline > fence_) {
        fence_ = st.fence_pg_timeline;
        fence_sync_lsn_ = st.sync_lsn;
    }
}

void World::failover_step(bool faults) {
    if (sync_p_ >= 0) {
        SimProposer& sp = proposers_[sync_p_];
        if (sp.running() && sp.proposer->status().sync_done) {
            on_sync_done(sync_p_);
            ++stats_->syncs_done;
            stop_proposer(sync_p_, "sync done");
            sync_p_ = -1;
            promote_at_ = step_ + 1 + rng_.below(20);
        } else if (!sp.running() || step_ >= sync_deadline_ ||
                   sp.proposer->state() == ProposerState::kSuperseded) {
            ++stats_->syncs_failed;
            stop_proposer(sync_p_, "the operator gives the sync up");
            sync_p_ = -1;
            if (rng_.chance(50))
                promote_at_ = step_ + 1 + rng_.below(20);  // promoted without a sync
            else
                note("failover abandoned");
        }
    }
    if (promote_at_ && step_ >= promote_at_) {
        promote_at_ = 0;
        promote_standby();
    }
    if (!faults) return;
    // Old primaries come back: their own WAL and terms, their old PG timeline.
    for (std::size_t p = 0; p < proposers_.size(); ++p)
        if (!proposers_[p].running() && !proposers_[p].sync && rng_.chance(2)) {
            ++stats_->comebacks;
            note("P" + std::to_string(p) + " COMES BACK on PG timeline " +
                 std::to_string(proposers_[p].pg_timeline));
            restart_proposer(static_cast<int>(p));
        }
    if (sync_p_ < 0 && !promote_at_ && failovers_ < kMaxFailovers &&
        proposers_.size() + 2 <= kMaxProposers && rng_.below(1000) < 8)
        begin_failover();
}

void World::check_invariants() {
    if (sync_p_ >= 0 && proposers_[sync_p_].running()) refresh_sync_wal(sync_p_);
    if (!committed_.empty()) {
        const Lsn end = kTimelineStart + committed_.size();
        std::size_t holders = 0;
        for (const SimAcceptor& a : acceptors_)
            if (a.storage.start && a.storage.durable_matches(
                                       committed_, std::max(a.storage.start, kTimelineStart), end))
                ++holders;
        if (holders < majority())
            fail("invariant 2 (committed WAL no longer durable on a majority)",
                 "only " + std::to_string(holders) + " of " + std::to_string(acceptors_.size()) +
                     " acceptors hold the committed WAL up to " + format_lsn(end));
    }
    for (std::size_t k = 0; k < acceptors_.size(); ++k) {
        SimAcceptor& sa = acceptors_[k];
        const Lsn durable_commit = sa.storage.durable.commit_lsn;
        if (durable_commit < sa.seen_durable_commit)
            fail("invariant 3 (commit_lsn decreased)", "A" + std::to_string(k) + " durable commit_lsn went from " +
                                                           format_lsn(sa.seen_durable_commit) + " to " + format_lsn(durable_commit));
        sa.seen_durable_commit = durable_commit;
        if (!sa.up) continue;
        const Lsn commit = sa.acceptor->commit_lsn();
        if (commit < sa.seen_commit)
            fail("invariant 3 (commit_lsn decreased)", "A" + std::to_string(k) + " commit_lsn went from " +
                                                           format_lsn(sa.seen_commit) + " to " + format_lsn(commit));
        sa.seen_commit = commit;
        if (commit > sa.acceptor->flush_lsn())
            fail("invariant 3 (commit_lsn beyond flush)", "A" + std::to_string(k));
        // What a consumer of this acceptor may read: [start, commit_lsn). It must be committed WAL.
        if (commit > kTimelineStart) {
            if (commit - kTimelineStart > committed_.size())
                fail("invariant 3 (acceptor serves uncommitted WAL)",
                     "A" + std::to_string(k) + " commit_lsn " + format_lsn(commit) + " beyond the committed end " +
                         format_lsn(kTimelineStart + committed_.size()));
            else if (!sa.storage.durable_matches(committed_, std::max(sa.storage.start, kTimelineStart), commit))
                fail("invariant 2/3 (acceptor would serve WAL that differs from the committed WAL)",
                     "A" + std::to_string(k) + " below its commit_lsn " + format_lsn(commit));
        }
    }
}

void World::step() {
    ++step_;
    now_ += 1 + rng_.below(8);
    const bool faults = step_ + 150 < total_steps_;  // a quiet tail lets the system converge
    const unsigned roll = static_cast<unsigned>(rng_.below(100));
    // Collect deliverable queues.
    std::vector<std::pair<int, bool>> ready;  // (conn, to_acceptor)
    const bool late_delivery = rng_.chance(15);
    for (std::size_t c = 0; c < conns_.size(); ++c) {
        if (conns_[c].zombie && late_delivery && !conns_[c].to_acceptor.empty())
            ready.push_back({static_cast<int>(c), true});
        if (!conns_[c].open) continue;
        if (!conns_[c].to_acceptor.empty()) ready.push_back({static_cast<int>(c), true});
        if (!conns_[c].to_proposer.empty()) ready.push_back({static_cast<int>(c), false});
    }
    if (roll < 55 && !ready.empty()) {
        auto [c, to_acc] = ready[rng_.below(ready.size())];
        // Targeted faults (still plain TCP behaviour): a connection sometimes
        // dies right before an election announcement or a WAL message, which
        // is what leaves terms and WAL on a minority (Raft's figure 8).
        const std::uint8_t head_tag = to_acc ? conns_[c].to_acceptor.front()[0] : 0;
        const bool elected_msg = head_tag == static_cast<std::uint8_t>(MessageTag::kProposerElected);
        const bool append_msg = head_tag == static_cast<std::uint8_t>(MessageTag::kAppendRequest);
        if (faults && conns_[c].open &&
            ((elected_msg && rng_.chance(targeted_elected_drop_)) ||
             (append_msg && rng_.chance(targeted_append_drop_))))
            close_connection(c, true, elected_msg ? "network drop before ProposerElected" : "network drop before AppendRequest");
        else if (to_acc)
            deliver_to_acceptor(c);
        else {
            Conn& conn = conns_[c];
            std::vector<std::uint8_t> bytes = std::move(conn.to_proposer.front());
            conn.to_proposer.pop_front();
            ++stats_->messages;
            SimProposer& sp = proposers_[conn.proposer];
            apply(conn.proposer, sp.proposer->on_message(conn.acceptor, bytes.data(), bytes.size(), now_));
        }
    } else if (roll < 65 && !pending_connects_.empty()) {
        const std::size_t i = rng_.below(pending_connects_.size());
        auto [p, k] = pending_connects_[i];
        pending_connects_.erase(pending_connects_.begin() + static_cast<long>(i));
        open_connection(p, k);
    } else if (roll < 78) {
        const int k = static_cast<int>(rng_.below(acceptors_.size()));
        if (acceptors_[k].up) acceptor_flush(k);
    } else if (roll < 78 + 10) {
        const int p = static_cast<int>(rng_.below(proposers_.size()));
        if (proposers_[p].running() && !proposers_[p].sync) generate_wal(p);
    } else if (faults && roll < 88 + fault_percent_) {
        const unsigned kind = static_cast<unsigned>(rng_.below(100));
        if (kind < 25) {
            std::vector<int> open;
            for (std::size_t c = 0; c < conns_.size(); ++c)
                if (conns_[c].open) open.push_back(static_cast<int>(c));
            if (!open.empty()) close_connection(open[rng_.below(open.size())], true, "network drop");
        } else if (kind < 37) {
            const int k = static_cast<int>(rng_.below(acceptors_.size()));
            if (acceptors_[k].up) crash_acceptor(k, rng_.chance(40));
        } else if (kind < 40) {
            // Power loss of a machine whose safekeeper process crashed earlier
            // (its restart may have trusted the page cache).
            const int k = static_cast<int>(rng_.below(acceptors_.size()));
            if (acceptors_[k].up)
                crash_acceptor(k, true);
            else
                acceptors_[k].storage.power_loss();
        } else if (kind < 43) {
            // An operator deletes a live timeline on one member; the next
            // greeting recreates it. Only while every other member holds the
            // committed WAL and knows it is committed (its durable commit_lsn
            // covers it): the data loss itself is not what is tested here, but
            // that the member does not vote twice in a term.
            const int k = static_cast<int>(rng_.below(acceptors_.size()));
            bool others_hold = !recreated_one_;
            for (std::size_t j = 0; j < acceptors_.size() && others_hold; ++j)
                if (static_cast<int>(j) != k &&
                    (acceptors_[j].storage.durable.commit_lsn <
                         kTimelineStart + committed_.size() ||
                     !acceptors_[j].storage.durable_matches(
                         committed_, std::max(acceptors_[j].storage.start, kTimelineStart),
                         kTimelineStart + committed_.size())))
                    others_hold = false;
            if (others_hold && acceptors_[k].up) recreate_acceptor(k);
        } else if (kind < 45) {
            if (proposers_.size() == 2) {
                const int to = static_cast<int>(rng_.below(2));
                clone_proposer(1 - to, to);
            }
        } else if (kind < 90) {
            // Partition: each proposer-acceptor link up with 70%.
            std::string desc;
            // Either random links, or (two proposers) a split: each acceptor
            // reachable from one side only, which sets up Raft's figure 8.
            const bool split = proposers_.size() == 2 && rng_.chance(60);
            for (std::size_t k = 0; k < acceptors_.size(); ++k) {
                const std::size_t side = rng_.below(2);
                const bool both = rng_.chance(15);
                for (std::size_t p = 0; p < proposers_.size(); ++p)
                    link_up_[p][k] = split ? (both || p % 2 == side) : rng_.chance(70);
            }
            for (std::size_t p = 0; p < proposers_.size(); ++p) {
                if (p) desc += '|';
                for (std::size_t k = 0; k < acceptors_.size(); ++k) desc += link_up_[p][k] ? '1' : '0';
            }
            note("network partition " + desc);
            for (std::size_t c = 0; c < conns_.size(); ++c)
                if (conns_[c].open && !link_up_[conns_[c].proposer][conns_[c].acceptor])
                    close_connection(static_cast<int>(c), true, "partitioned");
        } else {
            const int p = static_cast<int>(rng_.below(proposers_.size()));
            // (A stopped primary comes back in failover_step.)
            if (proposers_[p].running()) restart_proposer(p);
        }
    } else {
        for (std::size_t k = 0; k < acceptors_.size(); ++k)
            if (!acceptors_[k].up && rng_.chance(30)) restart_acceptor(static_cast<int>(k));
        // An operator restarts a superseded primary: it must be refused again
        // (or, if the quorum's WAL is really its own, elected safely).
        for (std::size_t p = 0; p < proposers_.size(); ++p)
            if (faults && proposers_[p].running() && !proposers_[p].sync &&
                proposers_[p].proposer->state() == ProposerState::kSuperseded && rng_.chance(10))
                restart_proposer(static_cast<int>(p));
        if (!faults || rng_.chance(5)) {
            for (std::size_t p = 0; p < proposers_.size(); ++p)
                for (std::size_t k = 0; k < acceptors_.size(); ++k) link_up_[p][k] = true;
        }
    }
    if (flip_at_step_ && step_ >= flip_at_step_) {
        // Nemesis: the other proposer gets a random majority, the elected one
        // the rest (an acceptor may stay visible to both).
        flip_at_step_ = 0;
        std::vector<std::size_t> order(acceptors_.size());
        for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
        for (std::size_t k = order.size(); k > 1; --k) std::swap(order[k - 1], order[rng_.below(k)]);
        std::string desc;
        for (std::size_t i = 0; i < order.size(); ++i) {
            const bool to_other = i < majority();
            const bool both = rng_.chance(10);
            link_up_[flip_towards_][order[i]] = to_other || both;
            link_up_[1 - flip_towards_][order[i]] = !to_other || both;
        }
        for (std::size_t p = 0; p < proposers_.size(); ++p) {
            if (p) desc += '|';
            for (std::size_t k = 0; k < acceptors_.size(); ++k) desc += link_up_[p][k] ? '1' : '0';
        }
        note("nemesis: partition " + desc + " favours P" + std::to_string(flip_towards_));
        for (std::size_t c = 0; c < conns_.size(); ++c)
            if (conns_[c].open && !link_up_[conns_[c].proposer][conns_[c].acceptor])
                close_connection(static_cast<int>(c), true, "partitioned");
    }
    if (failover_) failover_step(faults);
    for (std::size_t p = 0; p < proposers_.size(); ++p)
        if (proposers_[p].running())
            apply(static_cast<int>(p), proposers_[p].proposer->on_tick(now_));
    check_invariants();
}

std::optional<Violation> World::run(Stats& stats) {
    stats_ = &stats;
    total_steps_ = 300 + rng_.below(701);
    setup();
    while (step_ < total_steps_ && !violation_) step();
    stats.steps += step_;
    ++stats.schedules;
    return violation_;
}

std::optional<Violation> World::run_crash_loop(Stats& stats, std::uint64_t elections) {
    stats_ = &stats;
    acceptors_.resize(3);
    for (int k = 0; k < 3; ++k)
        acceptors_[k].acceptor = std::make_unique<Acceptor>(acceptor_config(k), &acceptors_[k].storage, AcceptorDurableState{});
    proposers_.resize(1);
    link_up_.assign(1, std::vector<bool>(3, true));
    proposers_[0].conn.assign(3, -1);
    generate_wal(0);
    restart_proposer(0);
    const std::uint64_t budget = elections * 400;
    std::size_t longest = 0;
    while (stats.elections < elections && step_ < budget && !violation_) {
        ++step_;
        now_ += 1 + rng_.below(8);
        std::vector<int> ready;  // only the live proposer's connections carry messages here
        for (int c : proposers_[0].conn)
            if (c >= 0 && conns_[c].open && (!conns_[c].to_acceptor.empty() || !conns_[c].to_proposer.empty()))
                ready.push_back(c);
        if (!ready.empty() && rng_.chance(80)) {
            const int c = ready[rng_.below(ready.size())];
            if (!conns_[c].to_acceptor.empty() && (conns_[c].to_proposer.empty() || rng_.chance(50))) {
                deliver_to_acceptor(c);
            } else {
                Conn& conn = conns_[c];
                std::vector<std::uint8_t> bytes = std::move(conn.to_proposer.front());
                conn.to_proposer.pop_front();
                apply(conn.proposer, proposers_[0].proposer->on_message(conn.acceptor, bytes.data(), bytes.size(), now_));
            }
        } else if (!pending_connects_.empty()) {
            auto [p, k] = pending_connects_.front();
            pending_connects_.erase(pending_connects_.begin());
            open_connection(p, k);
        } else {
            for (int k = 0; k < 3; ++k)
                if (!acceptors_[k].pending_flush.empty()) acceptor_flush(k);
        }
        const ProposerStatus st = proposers_[0].proposer->status();
        if (st.state == ProposerState::kElected) {
            longest = std::max(longest, st.term_history.size());
            for (const SimAcceptor& a : acceptors_)
                longest = std::max(longest, a.acceptor->state().term_history.size());
            // The primary dies once everything is committed and, mostly,
            // once the safekeepers also learned the new truncate_lsn (one
            // heartbeat later); sometimes right at the commit.
            bool horizon_known = true;
            for (const SimAcceptor& a : acceptors_)
                horizon_known = horizon_known && a.acceptor->state().truncate_lsn == st.commit_lsn;
            if (st.commit_lsn >= st.term_start_lsn && st.commit_lsn == proposers_[0].flush_end() &&
                st.truncate_lsn == st.commit_lsn && (horizon_known || rng_.chance(10))) {
                if (rng_.chance(10)) generate_wal(0);  // a restart that wrote WAL
                restart_proposer(0);                   // the primary crashes again
            }
        }
        apply(0, proposers_[0].proposer->on_tick(now_));
        check_invariants();
        if (longest > 8)
            fail("bounded term history", "a history grew to " + std::to_string(longest) + " entries after " +
                                             std::to_string(stats.elections) + " elections");
    }
    stats.steps += step_;
    ++stats.schedules;
    if (!violation_ && stats.elections < elections)
        fail("elections stopped", "only " + std::to_string(stats.elections) + " of " + std::to_string(elections) +
                                      " elections within " + std::to_string(budget) + " steps");
    return violation_;
}

bool parse_u64(const std::string& s, std::uint64_t& out) {
    if (s.empty() || s.size() > 19) return false;
    out = 0;
    for (char ch : s) {
        if (ch < '0' || ch > '9') return false;
        out = out * 10 + static_cast<std::uint64_t>(ch - '0');
    }
    return true;
}

int usage(const char* why) {
    std::fprintf(
        stderr,
        "wpsim: %s\nusage: wpsim [--seeds A..B | --seed N] [--trace] [--keep-going] [--break "
        "MODE] [--failover]\n"
        "  --failover     model failovers: sync proposer with a fence, promoted standbys,\n"
        "                 old primaries coming back\n"
        "  --seeds A..B   run schedules for seeds A through B (default 1..2000)\n"
        "  --seed N       run one schedule (replays a failing seed)\n"
        "  --trace        print the full trace of each schedule\n"
        "  --keep-going   do not stop at the first violating seed; count them\n"
        "  --break MODE   deliberately break a rule (test of the checker); MODE is one of:\n",
        why);
    for (const BreakName& b : kBreakModes)
        std::fprintf(stderr, "                   %-17s %s\n", b.name, b.what);
    std::fprintf(stderr, "exit: 0 ok, 1 invariant violation, 2 usage error\n");
    return 2;
}

const char* break_name(BreakMode mode) {
    for (const BreakName& b : kBreakModes)
        if (b.mode == mode) return b.name;
    return "";
}

}  // namespace

int main(int argc, char** argv) {
    std::uint64_t first = 1, last = 2000;
    bool trace = false;
    bool keep_going = false;
    std::uint64_t violations = 0;
    BreakMode mode = BreakMode::kNone;
    std::uint64_t crash_loop = 0;
    bool failover = false;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--trace") {
            trace = true;
        } else if (arg == "--failover") {
            failover = true;
        } else if (arg == "--keep-going") {
            keep_going = true;
        } else if (arg == "--crash-loop") {
            if (i + 1 >= argc || !parse_u64(argv[++i], crash_loop) || crash_loop == 0)
                return usage("bad --crash-loop, expected a positive number of elections");
        } else if (arg == "--seeds" || arg == "--seed" || arg == "--break") {
            if (i + 1 >= argc) return usage(("missing value for " + arg).c_str());
            const std::string value = argv[++i];
            if (arg == "--break") {
                bool known = false;
                for (const BreakName& b : kBreakModes)
                    if (value == b.name) {
                        mode = b.mode;
                        known = true;
                    }
                if (!known) return usage(("unknown --break mode '" + value + "'").c_str());
            } else if (arg == "--seed") {
                if (!parse_u64(value, first)) return usage("bad --seed");
                last = first;
            } else {
                const auto dots = value.find("..");
                if (dots == std::string::npos || !parse_u64(value.substr(0, dots), first) ||
                    !parse_u64(value.substr(dots + 2), last) || first > last)
                    return usage("bad --seeds, expected A..B with A <= B");
            }
        } else if (arg == "--help" || arg == "-h") {
            usage("help");
            return 0;
        } else {
            return usage(("unknown argument '" + arg + "'").c_str());
        }
    }
    if (mode == BreakMode::kInherit) failover = true;
    const auto t0 = std::chrono::steady_clock::now();
    Stats stats;
    if (crash_loop) {
        World world(first, 0, mode, trace, false);
        std::optional<Violation> v = world.run_crash_loop(stats, crash_loop);
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (trace || v) {
            const auto& lines = world.trace();
            const std::size_t from = (!trace && lines.size() > 200) ? lines.size() - 200 : 0;
            for (std::size_t i = from; i < lines.size(); ++i) std::printf("%s\n", lines[i].c_str());
        }
        if (v) {
            std::printf("\nviolation of %s in the crash loop (seed %llu): %s\n", v->invariant.c_str(),
                        static_cast<unsigned long long>(first), v->detail.c_str());
            return 1;
        }
        std::printf("wpsim: crash loop of %llu elections (%llu steps, %llu commits): histories bounded; no violation (%.1f s)\n",
                    static_cast<unsigned long long>(stats.elections), static_cast<unsigned long long>(stats.steps),
                    static_cast<unsigned long long>(stats.commits), secs);
        return 0;
    }
    for (std::uint64_t seed = first; seed <= last; ++seed) {
        // Each seed runs kEpisodesPerSeed independent cluster lifetimes.
        std::optional<Violation> v;
        std::unique_ptr<World> world;
        unsigned episode = 0;
        for (; episode < kEpisodesPerSeed && !v; ++episode) {
            world = std::make_unique<World>(seed, episode, mode, trace, failover);
            v = world->run(stats);
            if (trace) {
                std::printf("=== seed %llu episode %u\n", static_cast<unsigned long long>(seed), episode);
                for (const auto& line : world->trace()) std::printf("%s\n", line.c_str());
            }
        }
        ++stats.seeds;
        if (v && keep_going && !trace) {
            ++violations;
            std::printf("violation of %s in seed %llu (episode %u): %s\n", v->invariant.c_str(),
                        static_cast<unsigned long long>(seed), episode - 1, v->detail.c_str());
            continue;
        }
        if (v && !trace) {
            std::printf("=== seed %llu episode %u\n", static_cast<unsigned long long>(seed), episode - 1);
            const auto& lines = world->trace();
            const std::size_t from = (!trace && lines.size() > 400) ? lines.size() - 400 : 0;
            if (from) std::printf("... (%zu earlier trace lines; replay with --seed %llu --trace)\n", from,
                                  static_cast<unsigned long long>(seed));
            for (std::size_t i = from; i < lines.size(); ++i) std::printf("%s\n", lines[i].c_str());
        }
        if (v) {
            std::printf(
                "\nviolation of %s in seed %llu (episode %u): %s\nreplay: wpsim --seed %llu "
                "--trace%s%s%s\n",
                v->invariant.c_str(), static_cast<unsigned long long>(seed), episode - 1,
                v->detail.c_str(), static_cast<unsigned long long>(seed),
                failover && mode != BreakMode::kInherit ? " --failover" : "",
                mode == BreakMode::kNone ? "" : " --break ", break_name(mode));
            return 1;
        }
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (violations) {
        std::printf("wpsim: %llu of %llu seeds had a violation (%.1f s)\n",
                    static_cast<unsigned long long>(violations), static_cast<unsigned long long>(stats.seeds), secs);
        return 1;
    }
    std::printf(
        "wpsim: seeds %llu..%llu: %llu schedules (%u cluster lifetimes per seed), %llu steps, %llu "
        "messages, %llu elections, %llu commits "
        "(%llu bytes committed), %llu acceptor crashes (%llu power losses), %llu late messages, "
        "%llu recreated members, %llu restored primaries, "
        "%llu superseded proposers, %llu old-term commits; no violation (%.1f s)\n",
        static_cast<unsigned long long>(first), static_cast<unsigned long long>(last),
        static_cast<unsigned long long>(stats.schedules), kEpisodesPerSeed,
        static_cast<unsigned long long>(stats.steps),
        static_cast<unsigned long long>(stats.messages),
        static_cast<unsigned long long>(stats.elections),
        static_cast<unsigned long long>(stats.commits),
        static_cast<unsigned long long>(stats.committed_bytes),
        static_cast<unsigned long long>(stats.crashes),
        static_cast<unsigned long long>(stats.power_losses),
        static_cast<unsigned long long>(stats.late_messages),
        static_cast<unsigned long long>(stats.recreated),
        static_cast<unsigned long long>(stats.clones),
        static_cast<unsigned long long>(stats.superseded),
        static_cast<unsigned long long>(stats.old_term_commits), secs);
    if (failover)
        std::printf(
            "wpsim: failover: %llu failovers, %llu syncs (%llu done, %llu given up), %llu "
            "promotions (%llu lagging), %llu promoted standbys elected, %llu refused as lagging, "
            "%llu fenced primaries, %llu old primaries came back\n",
            static_cast<unsigned long long>(stats.failovers),
            static_cast<unsigned long long>(stats.syncs),
            static_cast<unsigned long long>(stats.syncs_done),
            static_cast<unsigned long long>(stats.syncs_failed),
            static_cast<unsigned long long>(stats.promotions),
            static_cast<unsigned long long>(stats.lagging_promotions),
            static_cast<unsigned long long>(stats.promoted_elected),
            static_cast<unsigned long long>(stats.refused_lagging),
            static_cast<unsigned long long>(stats.fenced),
            static_cast<unsigned long long>(stats.comebacks));
    return 0;
}
