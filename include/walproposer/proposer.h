// The proposer (walproposer side) of the consensus: an IO-free state machine.
//
// The proposer is a PostgreSQL primary pushing its own WAL to N acceptors.
// Inputs are events with an explicit `now` (milliseconds of a monotonic clock
// the driver reads): start, connected, disconnected, message received, WAL
// available up to an LSN, tick. Every call returns a ProposerOutput the driver
// executes IN THIS ORDER:
//   1. persist_own_term_history (durably, e.g. a file in the data directory)
//      -- before anything else; if that fails, drop the Proposer and restart;
//   2. disconnect the listed acceptors (close; do not call on_disconnected);
//   3. send the messages, in order (each payload is one CopyData);
//   4. start connecting to the listed acceptors, later reporting
//      on_connected() or on_disconnected() for each;
//   5. publish commit_lsn if set (sync-rep flush position), log the log lines.
// The driver must call on_tick() at least every ProposerConfig::tick_hint_ms.
// After on_disconnected(k) or a requested disconnect of k, the driver must not
// deliver any further message of that old connection.
//
// WAL bytes come from the driver through the WalReader interface, called
// synchronously while an output is built.
//
// Stale primary detection (invariant 6, docs/design.md): the proposer knows the terms it was
// elected in (ProposerConfig::own_term_history, which the driver persists
// whenever the proposer emits persist_own_term_history). Every byte an acceptor
// holds under such a term came from this primary's WAL. If the donor's WAL
// (the best WAL of the voting quorum) contains bytes of any other term, or
// extends past the primary's own end of WAL, the primary's WAL is not a
// superset of it: the proposer does not take the term, enters kSuperseded,
// says why (term and LSN) in status() and the log, and never campaigns again.
// Terms are checked by the bytes too: the donor's VoteResponse carries the last
// kVoteTailBytes of its WAL, and they must equal the primary's own WAL at the
// same LSNs (a data directory restored from a snapshot has our terms but not
// our WAL).
//
// Histories stay bounded: the elected history drops entries below the highest
// truncate_lsn among the voters and terms that wrote nothing (trim_history);
// the own terms shrink to the current term at its first commit.
//
// Failover (docs/failover.md):
//  * Fence: an acceptor's greeting carries its fence (min_pg_timeline). A
//    proposer on a lower PostgreSQL timeline is fenced: it enters kSuperseded
//    with the reason and never campaigns again.
//  * Sync proposer (ProposerConfig::sync): has no WAL of its own. It fences
//    the old primary (its VoteRequests carry the fence: one above every
//    PostgreSQL timeline and fence its greetings reported), takes the donor's
//    WAL over WalReadRequests, makes a quorum hold and commit all of it, and
//    reports status().sync_done with sync_lsn = the donor's end of WAL, which
//    is at or above everything any old primary acknowledged.
//  * Inherited WAL: a promoted standby did not write the terms of the WAL it
//    replayed. While it has no own terms it takes the quorum's WAL as its own
//    only when the quorum's WAL ends at or below inherited_wal_end (its
//    PostgreSQL timeline's switch point) and the donor's tail equals its own
//    WAL. Otherwise (promoted before catching up) it becomes superseded with
//    both LSNs; when the greetings already show it, before any vote, so its
//    attempt changes nothing on the acceptors.
//
// Membership (docs/consensus.md, "Membership change"): with a configuration
// (ProposerConfig::configuration, generation > 0) the proposer's acceptors
// are the configuration's members, one *slot* each (slot_member(k) names the
// node id and address the driver connects slot k to); an acceptor whose
// greeting shows another node id is dropped, and only members count. In a
// joint configuration elections and commits need a majority of both sets.
// A configuration with a newer key seen in a greeting or VoteResponse is
// adopted (persisted first, ProposerOutput::persist_configuration) and the
// proposer restarts its campaign under it. request_membership() asks for a
// change; the elected proposer drives it: C(g) -> joint J(g+1) = {old, new}
// -> C(g+2) = {new} once J is durable on a quorum of both sets and a
// majority of the new set holds commit_lsn. Slots are never renumbered: new
// members get new slots (connect may name k >= earlier slot_count()), and
// the slots of removed members are retired (never connected again).
// Without a configuration (generation 0, the legacy mode) there are
// acceptor_count slots, any node id is accepted and quorums are counted; a
// legacy proposer never adopts a configuration (its slots are the driver's
// list), so safekeepers that hold one refuse its votes.
//
// Ownership / lifetime: the WalReader is not owned and must outlive the
// Proposer. Thread-safety: none; single-threaded use. No clock, socket or file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "walproposer/configuration.h"
#include "walproposer/lsn.h"
#include "walproposer/messages.h"
#include "walproposer/result.h"
#include "walproposer/term_history.h"

namespace wp {

using TimeMs = std::uint64_t;

// Bytes a sync proposer asks the donor for per WalReadRequest.
constexpr std::size_t kSyncReadBytes = 1024 * 1024;

// Supplies the primary's WAL.
class WalReader {
public:
    virtual ~WalReader() = default;
    // Appends the bytes [begin, end) to `out` (end <= the LSN last reported to
    // on_wal_available). An error makes the proposer drop that acceptor's
    // connection and record the error (e.g. WAL already recycled).
    virtual Status read_wal(Lsn begin, Lsn end, std::vector<std::uint8_t>& out) = 0;
};

struct ProposerConfig {
    // Legacy mode only (no configuration): the number of slots.
    std::size_t acceptor_count = 3;
    // The proposer's membership configuration as last persisted from
    // ProposerOutput::persist_configuration (generation 0: none, legacy).
    Configuration configuration;
    // Identity sent to every acceptor (protocol_version is filled in).
    ProposerGreeting greeting;
    // Terms this primary was elected in, (term, start LSN; LSNs clamped to be
    // non-decreasing), as last persisted from
    // ProposerOutput::persist_own_term_history. Empty for a fresh primary.
    TermHistory own_term_history;
    // Where the timeline starts when every voter is empty (first election).
    Lsn timeline_start_lsn = kInvalidLsn;

    TimeMs tick_hint_ms = 100;
    TimeMs reconnect_interval_ms = 1000;   // offline -> connecting
    TimeMs response_timeout_ms = 10000;    // no message from a connected acceptor
    TimeMs election_timeout_ms = 5000;     // campaign without quorum -> back off
    TimeMs backoff_min_ms = 100;           // after stepping down
    TimeMs backoff_max_ms = 5000;
    TimeMs heartbeat_interval_ms = 1000;   // empty AppendRequest when idle
    // A new commit_lsn rides on the next AppendRequest that carries WAL; a
    // streaming acceptor that gets no WAL meanwhile is told with an empty
    // AppendRequest this long after the commit LSN advanced (0: at once).
    // Under load the notice costs no message and no reply; an idle primary's
    // safekeepers (and the standbys they serve) learn it this much later.
    // Not used by a sync proposer (it waits for the acceptors' commit_lsn).
    TimeMs commit_notice_delay_ms = 0;
    // With a configuration, an acceptor that needs WAL the primary no longer
    // has (the WalReader fails) recovers it from its peers: it is reconnected
    // only after this long, so that the recovery is not interrupted.
    TimeMs peer_recovery_wait_ms = 10000;
    std::size_t max_append_bytes = 128 * 1024;        // per AppendRequest
    std::size_t max_inflight_bytes = 16 * 1024 * 1024;  // sent but not flushed, per acceptor
    std::uint64_t random_seed = 1;         // back-off jitter (deterministic)

    // Sync proposer: see the header comment. greeting.system_id may be 0 (the
    // greeting is sent with kGreetingFlagSync); the WalReader may be null.
    bool sync = false;
    // Promoted standby: where its PostgreSQL timeline starts (the switch
    // point from its timeline history; 0 = not promoted). Used only while
    // own_term_history is empty.
    Lsn inherited_wal_end = kInvalidLsn;

    // TEST ONLY -- never set outside the simulator. They deliberately break the
    // protocol so that the simulator can prove it detects the violation.
    // Quorum size to use instead of N/2+1 (0 = off).
    std::size_t unsafe_test_only_quorum_override = 0;
    // Commit WAL below the current term's start by counting replicas (Raft's
    // figure 8 mistake).
    bool unsafe_test_only_commit_old_terms = false;
    // Skip the byte comparison of the donor's WAL tail with the local WAL.
    bool unsafe_test_only_skip_content_check = false;
    // Never trim the elected history nor the own terms (unbounded growth).
    bool unsafe_test_only_keep_full_history = false;
    // Take any quorum WAL below the local end as inherited, without the
    // switch-point and content checks.
    bool unsafe_test_only_inherit_unchecked = false;
    // A membership change goes straight from C(g) to the new set, without
    // the joint configuration (counts only the new set).
    bool unsafe_test_only_skip_joint = false;
};

// Proposer-level state. Transitions:
//   kCollectingGreetings -> kCampaigning   greetings from a quorum; term = max seen + 1
//   kCollectingGreetings -> kSuperseded    a quorum holds a later term's WAL past our end
//   kCampaigning -> kElected               votes from a quorum, donor WAL is ours
//   kCampaigning -> kSuperseded            donor WAL is not ours / extends past our end
//   kCampaigning -> kBackingOff            higher term seen, or election timeout
//   kElected -> kBackingOff                higher term seen
//   kBackingOff -> kCollectingGreetings    back-off expired (reconnects everyone)
//   kSuperseded                            terminal
enum class ProposerState { kCollectingGreetings, kCampaigning, kElected, kBackingOff, kSuperseded };

// Per-acceptor connection state. Transitions:
//   kOffline -> kConnecting              connect requested (start, reconnect interval)
//   kConnecting -> kHandshake            on_connected; ProposerGreeting sent
//   kHandshake -> kWaitingForElection    AcceptorGreeting received, no term chosen yet
//   kHandshake/kWaitingForElection -> kVoting   proposer has a term; VoteRequest sent
//   kVoting -> kWaitingForElection       VoteResponse received while campaigning
//   kVoting/kWaitingForElection -> kStreaming   proposer elected; ProposerElected sent
//   any -> kOffline                      disconnect, timeout, protocol error, step-down
enum class AcceptorConnState { kOffline, kConnecting, kHandshake, kWaitingForElection, kVoting, kStreaming };

const char* to_string(ProposerState state);
const char* to_string(AcceptorConnState state);

struct OutgoingMessage {
    std::size_t acceptor = 0;            // index in [0, acceptor_count)
    std::vector<std::uint8_t> payload;   // encoded message (one CopyData)
};

enum class LogLevel { kDebug, kInfo, kWarning, kError };

struct LogLine {
    LogLevel level = LogLevel::kInfo;
    std::string text;
};

struct ProposerOutput {
    std::optional<TermHistory> persist_own_term_history;
    // Persist durably together with (before) anything else in this output:
    // the proposer's configuration (the driver passes it back as
    // ProposerConfig::configuration after a restart).
    std::optional<Configuration> persist_configuration;
    std::vector<std::size_t> disconnect;
    std::vector<OutgoingMessage> messages;
    std::vector<std::size_t> connect;
    std::optional<Lsn> commit_lsn;               // set when commit_lsn increased
    std::optional<ProposerState> state_changed;  // set when the proposer state changed
    std::vector<LogLine> log;
};

struct AcceptorStatus {
    AcceptorConnState state = AcceptorConnState::kOffline;
    NodeId node_id = 0;            // the slot's member (0: legacy slot, any node)
    SafekeeperAddress address;     // the slot's member address (legacy: empty)
    bool member = true;            // in the current configuration (retired slots: false)
    Generation generation = 0;     // configuration generation the acceptor acknowledged
    Term term = 0;                 // last term the acceptor reported
    Lsn flush_lsn = kInvalidLsn;   // last flush LSN the acceptor reported
    Lsn commit_lsn = kInvalidLsn;  // last commit LSN the acceptor reported
    Lsn sent_lsn = kInvalidLsn;    // end of WAL sent in the current term
    std::uint64_t hs_xmin = 0;
    std::uint64_t hs_catalog_xmin = 0;
    std::string last_error;
};

struct ProposerStatus {
    ProposerState state = ProposerState::kCollectingGreetings;
    Term term = 0;                       // current (or last campaigned) term
    Lsn commit_lsn = kInvalidLsn;
    Lsn truncate_lsn = kInvalidLsn;
    Lsn term_start_lsn = kInvalidLsn;    // where the elected term's WAL starts
    Lsn local_flush_lsn = kInvalidLsn;   // primary's own end of WAL
    TermHistory term_history;            // elected history when elected, else the own terms
    std::size_t quorum = 0;
    // Set in kSuperseded: the later term and LSN that prove it, and why.
    Term superseded_by_term = 0;
    Lsn superseded_at_lsn = kInvalidLsn;
    std::string superseded_reason;
    std::vector<AcceptorStatus> acceptors;
    // Lowest non-zero hot-standby feedback over streaming acceptors (0 = none).
    std::uint64_t hs_xmin = 0;
    std::uint64_t hs_catalog_xmin = 0;
    // Sync proposer: the fence its votes carry, the LSN it syncs to (the
    // donor's end of WAL, known once elected), and whether a quorum has
    // acknowledged commit_lsn == sync_lsn (the sync is complete).
    std::uint32_t fence_pg_timeline = 0;
    std::uint64_t sync_system_id = 0;  // the system id the safekeepers hold
    Lsn sync_lsn = kInvalidLsn;
    bool sync_done = false;
    // Membership: the configuration in force, and the set asked for by
    // request_membership() that is not reached yet (empty: none).
    Configuration configuration;
    MemberSet target_members;
};

class Proposer {
public:
    // `wal` must be non-null and outlive the proposer.
    Proposer(ProposerConfig config, WalReader* wal);

    // Begins: connects to every acceptor. `local_flush_lsn` is the primary's
    // current end of flushed WAL.
    ProposerOutput start(TimeMs now, Lsn local_flush_lsn);
    ProposerOutput on_connected(std::size_t acceptor, TimeMs now);
    ProposerOutput on_disconnected(std::size_t acceptor, TimeMs now, const std::string& reason);
    // `payload` is one CopyData payload from that acceptor.
    ProposerOutput on_message(std::size_t acceptor, const std::uint8_t* payload, std::size_t size,
                              TimeMs now);
    // The primary's WAL is flushed up to `end` (ignored if not higher).
    ProposerOutput on_wal_available(Lsn end, TimeMs now);
    ProposerOutput on_tick(TimeMs now);
    // When on_tick() next has something to send that cannot wait for the
    // next tick_hint_ms (a deferred commit notice, commit_notice_delay_ms);
    // nothing when no such deadline is pending.
    std::optional<TimeMs> next_deadline() const;

    // Asks for the member set `target` (validated: an error names the
    // problem; needs a configuration, generation > 0). The elected proposer
    // drives the change (output of later events); a joint configuration in
    // progress is finished first. Replaces an earlier request.
    Status request_membership(MemberSet target);

    // Slots: what the driver connects slot k to (legacy slots: id 0, empty
    // address: the driver's own list).
    std::size_t slot_count() const { return peers_.size(); }
    Member slot_member(std::size_t k) const;
    const Configuration& configuration() const { return membership_; }

    // A full copy of the state, for display. The driver's loop reads the
    // narrow accessors below instead.
    ProposerStatus status() const;
    ProposerState state() const { return state_; }
    Term term() const { return term_; }
    Lsn commit_lsn() const { return commit_lsn_; }
    Lsn truncate_lsn() const { return truncate_lsn_; }
    // What the primary must keep of its own WAL for the acceptors (its
    // replication slot). Without a configuration: truncate_lsn(), every
    // acceptor may need it. With one, a member that is not streaming now
    // recovers what it lacks from its peers (docs/consensus.md, "Peer
    // recovery"), so only the streaming members hold it back: the lowest
    // flush among them, capped at commit_lsn(), never below truncate_lsn().
    Lsn primary_retention_lsn() const;
    // Highest LSN sent to any acceptor in the current term (0 = none).
    Lsn sent_lsn() const;
    // Lowest non-zero hot-standby feedback over streaming acceptors (0 = none).
    struct HotStandbyFeedback {
        std::uint64_t xmin = 0;
        std::uint64_t catalog_xmin = 0;
    };
    HotStandbyFeedback hot_standby_feedback() const;
    std::size_t quorum() const;

private:
    struct Peer {
        AcceptorConnState state = AcceptorConnState::kOffline;
        std::optional<AcceptorGreeting> greeting;
        std::optional<VoteResponse> vote;
        bool elected_acked = false;    // got the reply to ProposerElected
        Term term = 0;
        Lsn flush_lsn = kInvalidLsn;   // reported; in streaming: durable in our term
        Lsn commit_lsn = kInvalidLsn;
        Lsn sent_lsn = kInvalidLsn;
        Lsn sent_commit_lsn = kInvalidLsn;
        Term confirmed_term = 0;            // term of confirmed_flush
        Lsn confirmed_flush = kInvalidLsn;  // acknowledged after our ProposerElected
        TimeMs last_received_at = 0;
        TimeMs last_sent_at = 0;
        TimeMs reconnect_at = 0;
        std::uint64_t hs_xmin = 0, hs_catalog_xmin = 0;
        std::string last_error;
        // Membership: the member this slot is for (id 0: legacy slot).
        Member member;
        bool retired = false;               // not a member any more: never connected
        Generation sent_generation = 0;     // configuration sent on this connection
        Generation acked_generation = 0;    // generation the acceptor reported
    };

    // Defined in src/core/proposer.cpp, except the election's steps, which
    // are in src/core/proposer_election.cpp: begin_collecting,
    // handle_acceptor_greeting, maybe_start_campaign, send_vote_request,
    // handle_vote_response, maybe_become_elected, verify_donor_tail,
    // lagging_reason and send_elected.
    void set_state(ProposerState s, ProposerOutput& out);
    void log(ProposerOutput& out, LogLevel level, std::string text);
    void send(std::size_t k, const Message& m, TimeMs now, ProposerOutput& out);
    void drop_peer(std::size_t k, TimeMs now, const std::string& why, bool request_disconnect,
                   ProposerOutput& out);
    void begin_collecting(TimeMs now, ProposerOutput& out);
    void step_down(Term seen_term, std::size_t from, TimeMs now, ProposerOutput& out);
    void become_superseded(Term term, Lsn lsn, std::string reason, ProposerOutput& out);
    void maybe_start_campaign(TimeMs now, ProposerOutput& out);
    void send_vote_request(std::size_t k, TimeMs now, ProposerOutput& out);
    void maybe_become_elected(TimeMs now, ProposerOutput& out);
    // Compares the donor's WAL tail with the local WAL; on a mismatch or an
    // unreadable local range becomes superseded and returns false.
    bool verify_donor_tail(const VoteResponse& donor, Term donor_llt, ProposerOutput& out);
    void send_elected(std::size_t k, TimeMs now, ProposerOutput& out);
    void handle_acceptor_greeting(std::size_t k, const AcceptorGreeting& m, TimeMs now, ProposerOutput& out);
    void handle_vote_response(std::size_t k, const VoteResponse& m, TimeMs now, ProposerOutput& out);
    void handle_append_response(std::size_t k, const AppendResponse& m, TimeMs now, ProposerOutput& out);
    void handle_wal_read_response(std::size_t k, const WalReadResponse& m, TimeMs now, ProposerOutput& out);
    // Sync proposer: asks a peer holding our term's WAL for the next chunk
    // the lagging peers need.
    void sync_fetch(TimeMs now, ProposerOutput& out);
    bool sync_done() const;
    // Why a promoted standby whose switch point lies below `quorum_end` is refused.
    std::string lagging_reason(Lsn quorum_end) const;
    void update_commit(ProposerOutput& out);
    // Membership (src/core/proposer_membership.cpp).
    bool configured() const { return membership_.generation != 0; }
    // Slot k's acceptor counts: legacy, or greeted as a member of membership_.
    bool counts(std::size_t k) const;
    // The slots form a quorum: legacy by count, else is_quorum(membership_).
    bool is_quorum_of(const std::vector<std::size_t>& slots) const;
    void build_slots(TimeMs now);
    // Adopts a configuration with a newer key (persist, reshape the slots;
    // while campaigning or elected, start over). False if not newer.
    bool adopt_configuration(const Configuration& c, std::size_t from, TimeMs now,
                             ProposerOutput& out);
    void install_configuration(Configuration c, TimeMs now, ProposerOutput& out);
    // Elected: sends ConfigurationUpdates and moves a change on.
    void advance_membership(TimeMs now, ProposerOutput& out);
    Lsn configured_commit_candidate() const;
    Lsn configured_truncate_lsn() const;
    void pump(TimeMs now, ProposerOutput& out);
    TimeMs next_backoff();

    // Sync proposer's WAL: a window of the donor's WAL, [begin, begin + size).
    class FetchedWal : public WalReader {
    public:
        Status read_wal(Lsn begin, Lsn end, std::vector<std::uint8_t>& out) override;
        Lsn begin = kInvalidLsn;
        std::vector<std::uint8_t> bytes;
        Lsn end() const { return begin + bytes.size(); }
    };

    ProposerConfig config_;
    Configuration membership_;
    std::optional<MemberSet> target_members_;
    WalReader* wal_;
    FetchedWal fetched_;
    bool fetch_outstanding_ = false;
    std::size_t fetch_from_ = 0;   // peer asked, valid while fetch_outstanding_
    std::uint32_t fence_pg_timeline_ = 0;
    std::uint64_t sync_system_id_ = 0;
    std::vector<Peer> peers_;
    ProposerState state_ = ProposerState::kCollectingGreetings;
    bool started_ = false;
    Term term_ = 0;
    Lsn local_flush_lsn_ = kInvalidLsn;
    TermHistory own_history_;      // terms we were elected in (persisted)
    TermHistory elected_history_;  // valid in kElected
    Lsn term_start_lsn_ = kInvalidLsn;
    Lsn commit_lsn_ = kInvalidLsn;
    Lsn truncate_lsn_ = kInvalidLsn;
    // The commit LSN pump() last saw, and when it first saw it (the clock
    // of commit_notice_delay_ms).
    Lsn commit_noticed_ = kInvalidLsn;
    TimeMs commit_noticed_at_ = 0;
    TimeMs campaign_started_at_ = 0;
    TimeMs backoff_until_ = 0;
    unsigned backoff_attempts_ = 0;
    std::uint64_t rng_state_;
    Term superseded_by_term_ = 0;
    Lsn superseded_at_lsn_ = kInvalidLsn;
    std::string superseded_reason_;
};

}  // namespace wp
