// The simulated world of wpsim (test/sim/): acceptors, proposers, the
// network and the scheduler of one cluster lifetime ("schedule").
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
// scheduler picks every step, so a seed replays identically. After every
// step the invariants 1-4 and 6 of docs/consensus.md, and the one-streamer
// rule of the acceptor session, are checked against a record of every
// committed byte. With --failover, primaries run on PostgreSQL timelines and
// failovers happen: a sync proposer fences the old timelines and commits the
// quorum's WAL, a standby (caught up or lagging) is promoted on the next
// timeline, and stopped old primaries come back; the failover invariants
// (docs/consensus.md) are checked too. Acceptors no proposer streams to
// copy committed WAL from each other (peer recovery) throughout.
//
// Files: world.h/world.cpp (the model and the scheduler), invariants.h/
// invariants.cpp (what is checked, as World's checking methods), main.cpp
// (the command line). Ownership: a World owns its acceptors, proposers and
// connections; one thread; nothing is shared between Worlds.
#pragma once

#include <cstdint>
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

#include "invariants.h"
#include "support/memory_acceptor_storage.h"
#include "support/memory_wal.h"

namespace wpsim {

using namespace wp;
using wp::testing::MemoryAcceptorStorage;
using wp::testing::MemoryWal;

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
    kOneStreamer,
    kJoint,
    kRecovery
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

struct SimAcceptor {
    MemoryAcceptorStorage storage;
    std::unique_ptr<Acceptor> acceptor;
    bool up = true;
    Lsn acked_flush = kInvalidLsn;  // highest flush LSN reported since the last truncation
    Term granted_term = 0;          // highest term a granted vote was sent for
    Lsn seen_commit = kInvalidLsn;  // in-memory commit_lsn last observed (this life)
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
    // Peer recovery in progress (peer_recovery_step): the donor acceptor and
    // the target (the donor's durable commit_lsn when it began); -1: none.
    int recovering_from = -1;
    Lsn recovery_target = kInvalidLsn;
};

struct SimProposer;

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
    MemoryWal wal{kTimelineStart};  // local WAL; survives restarts
    TermHistory persisted_history;  // driver-persisted own term history
    Configuration persisted_config; // driver-persisted configuration (--membership)
    std::unique_ptr<Proposer> proposer;
    std::vector<int> conn;  // per acceptor: connection id or -1
    // A sync proposer has no WAL: `wal` is rebuilt from the acceptors that
    // accepted its term (they must agree byte for byte).
    bool running() const { return proposer != nullptr; }
    Lsn flush_end() const { return wal.end(); }
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
                  refused_lagging = 0, comebacks = 0, change_requests = 0, joint_configs = 0,
                  changes_done = 0, adopted_configs = 0, change_crashes = 0, recoveries = 0,
                  recovered_bytes = 0;
};

class World {
  public:
    // One episode: a fresh cluster whose whole life is determined by (seed, episode).
    World(std::uint64_t seed, unsigned episode, BreakMode mode, bool verbose, bool failover,
          bool membership = false)
        : rng_(seed * 1000003ull + episode),
          seed_(seed * 1000003ull + episode),
          mode_(mode),
          verbose_(verbose),
          failover_(failover),
          membership_(membership) {}

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
    // Peer recovery (docs/consensus.md "Peer recovery"): an acceptor that no
    // proposer streams to copies committed WAL from another, one chunk per
    // call, interleaved with everything else.
    void peer_recovery_step();
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
    // Membership model (--membership, membership.cpp): proposer slots map to
    // acceptors by node id (acceptor k is node k + 1).
    int acceptor_of(int p, std::size_t slot) const;
    std::optional<std::size_t> slot_of(int p, int acceptor) const;
    void membership_setup();
    void membership_step();
    void on_persist_configuration(int p, const Configuration& c);
    // The acceptors in `holders` are a majority: of all acceptors (legacy),
    // or of the members of the configuration `c` (both sets when `joint`).
    bool durable_majority(const std::vector<int>& holders, const Configuration& c, bool joint) const;
    void check_membership();

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
    std::vector<std::uint8_t> committed_;  // committed bytes from kTimelineStart
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
    // Membership model.
    bool membership_ = false;
    Configuration in_force_;  // the newest configuration any proposer persisted
    Configuration commit_config_;  // configuration a commit being applied was counted in
    std::map<std::pair<Generation, Term>, Configuration> configs_by_key_;
    std::vector<ConfigurationKey> seen_config_key_;  // per acceptor: durable key last seen
    int change_crash_p_ = -1;             // proposer to restart during its change
    std::uint64_t change_crash_at_ = 0;   // at this step
};

}  // namespace wpsim
