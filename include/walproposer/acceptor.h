// The acceptor (safekeeper side) of the consensus: an IO-free state machine.
//
// The driver (safekeeper daemon, simulator, tests) decodes a message, calls the
// matching handle_* method, and sends back the returned response. Durable
// effects go through the AcceptorStorage interface the driver provides;
// a storage call returns only when its documented durability holds.
//
// Per connection the driver MUST require a successful handle_greeting() before
// passing any other message from that connection, and MUST close the
// connection when a handle_* call returns an error (the error text is suitable
// for a PostgreSQL ErrorResponse); AcceptorSession (acceptor_session.h) is
// the one implementation of these per-connection rules. Rejections that the
// proposer must learn about (a higher term) are not errors: they are normal
// responses carrying the acceptor's term.
//
// Storage failures stop the acceptor (PostgreSQL's fsync rule: after a failed
// write or fsync the state on disk is unknown, so it is never retried): from
// the first failed storage call on, failed() is true and every handle_* call
// returns that error; the driver stops serving the timeline. The acceptor also
// starts failed when its recovered state is inconsistent (a durable commit_lsn
// above the recovered end of WAL: acknowledged WAL is missing).
//
// Nothing a proposer sends changes durable state before that proposer is
// elected, except the term promise of a vote: the greeting only validates, and
// the identity and PostgreSQL timeline of a proposer are adopted together with
// its ProposerElected (docs/consensus.md).
//
// Group commit: handle_append_request() only *writes* WAL (storage.write_wal).
// The driver may handle several AppendRequests (from the same connection), then
// call flush() once (one fsync), then send make_append_response(), which
// reports only what is durable.
//
// Ownership / lifetime: Acceptor does not own the storage; the storage must
// outlive the Acceptor. Thread-safety: none; one Acceptor per timeline, used by
// one thread (or under one lock) at a time. No clock, socket or file inside.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "walproposer/configuration.h"
#include "walproposer/lsn.h"
#include "walproposer/messages.h"
#include "walproposer/result.h"
#include "walproposer/term_history.h"

namespace wp {

// Identity of the timeline an acceptor stores. system_id == 0 means "not yet
// known": the first ProposerGreeting sets it.
struct TimelineIdentity {
    Id128 tenant_id{};
    Id128 timeline_id{};
    std::uint64_t system_id = 0;
    std::uint32_t pg_version = 0;
    std::uint32_t pg_timeline = 0;
    std::uint32_t wal_segment_size = 0;
    bool operator==(const TimelineIdentity& o) const;
};

// What the acceptor persists (the daemon's control file). flush_lsn is not
// here: storage derives it from the WAL itself.
struct AcceptorDurableState {
    Term term = 0;             // highest term promised (voted for or accepted)
    TermHistory term_history;  // history of the last accepted proposer (may extend past flush)
    Lsn commit_lsn = kInvalidLsn;
    Lsn truncate_lsn = kInvalidLsn;
    TimelineIdentity identity;
    Lsn timeline_start_lsn = kInvalidLsn;  // first LSN of WAL ever held; 0 = empty timeline
    // The fence (docs/failover.md): a proposer whose PostgreSQL timeline is
    // below this can never be elected here (0 = none). Raised, never lowered,
    // by a sync proposer's granted vote; persisted with that vote.
    std::uint32_t min_pg_timeline = 0;
    // The membership configuration last installed by an elected proposer
    // (generation 0: none). Messages of an older configuration are refused.
    Configuration configuration;
    bool operator==(const AcceptorDurableState& o) const;
};

// Storage the acceptor drives. Implemented on disk by the daemon and in
// memory (losing unflushed bytes on crash) by the simulator.
class AcceptorStorage {
public:
    virtual ~AcceptorStorage() = default;
    // Durable (fsynced, atomically replaced) when it returns ok.
    virtual Status persist_state(const AcceptorDurableState& state) = 0;
    // Writes WAL bytes at [begin, begin+size). `begin` is always the current
    // end of written WAL. Not durable until flush_wal() returns ok.
    virtual Status write_wal(Lsn begin, const std::uint8_t* data, std::size_t size) = 0;
    // Makes every written byte durable.
    virtual Status flush_wal() = 0;
    // Appends durable WAL bytes [begin, end) to `out` (begin >= the start of
    // the stored WAL, end <= flush_lsn()).
    virtual Status read_wal(Lsn begin, Lsn end, std::vector<std::uint8_t>& out) = 0;
    // Removes all WAL at and after `end` and makes that durable; afterwards
    // flush_lsn() == end. On an empty store this sets where WAL starts.
    virtual Status truncate_wal(Lsn end) = 0;
    // End of durable WAL; 0 when the store holds no WAL.
    virtual Lsn flush_lsn() const = 0;
};

struct AcceptorConfig {
    NodeId node_id = 0;
    // TEST ONLY -- the simulator's negative control: accept a ProposerElected
    // whose start differs from the highest common point and cut at the lower
    // of the two (the rule before the late-message fix).
    bool unsafe_test_only_trust_elected_start = false;
};

// Result of handle_append_request().
struct AppendOutcome {
    // True when bytes were written and flush() + make_append_response() must
    // follow. False for a term rejection: then send `reply` right away.
    bool needs_flush = false;
    AppendResponse reply;  // valid when !needs_flush
};

class Acceptor {
public:
  // `storage` must be non-null and outlive this object. `initial` is the
  // durable state read back from storage by the driver (default-constructed
  // for a new timeline); the WAL end is taken from storage->flush_lsn(). If
  // the durable commit_lsn lies above that end, the acceptor starts failed.
  Acceptor(AcceptorConfig config, AcceptorStorage* storage, AcceptorDurableState initial);

  // ProposerGreeting: validates only. Rejects a protocol version it does not
  // speak, system id 0 (except from a sync proposer), and, once an identity
  // is known, a different system id, segment size, tenant/timeline, or a PG
  // timeline older than the one held (a sync proposer is checked for the
  // tenant/timeline only). Changes nothing (a node that is never elected,
  // e.g. a promoted copy, must not lock the real primary out). Returns the
  // AcceptorGreeting, which carries the identity, the fence and the
  // configuration: a fenced proposer, or one with an older configuration, is
  // answered too, so that it learns why it can never be elected here (or
  // adopts the newer configuration); its vote/election is refused later.
  Result<AcceptorGreeting> handle_greeting(const ProposerGreeting& greeting);

  // VoteRequest: grants iff request.term > term; the new term (and a higher
  // fence, request.min_pg_timeline) is persisted before this returns.
  // Written but unflushed WAL is flushed first, so the reply (flush LSN,
  // history, WAL tail) describes exactly what the acceptor keeps until a
  // ProposerElected. Always answers (refusals carry the higher term). A vote
  // only promises a term: a fenced proposer that gets one is still refused
  // at ProposerElected. Refused without any change (not granted, with the
  // reason in VoteResponse::refusal) when the request's configuration key is
  // older than the one held, or when this acceptor holds that very
  // configuration and is not a member of it.
  Result<VoteResponse> handle_vote_request(const VoteRequest& request);

  // ProposerElected, sent on a connection whose greeting was `greeting`. If
  // request.term < term, answers with the higher term and changes nothing.
  // The greeting is validated again against the identity (which may have
  // been adopted since). Then:
  //  * first ProposerElected of this term: request.start_streaming_lsn must
  //    equal the highest common point recomputed from the current state
  //    (anything else is a stale or reordered message: an error); WAL is
  //    truncated there (never below commit_lsn: an error), then the term, the
  //    history and the greeting's identity/PG timeline are persisted;
  //  * a repeated ProposerElected of the term already accepted (a reconnect
  //    of the same proposer, or a late copy from an old connection): the
  //    history must be identical; nothing is truncated or persisted.
  // Answers with the flush LSN where the proposer must continue. Truncation
  // happens before the history is persisted, so a crash in between leaves a
  // consistent old state. A proposer below the fence is refused (an error).
  // A sync proposer's election adopts no identity and no PostgreSQL timeline;
  // it is refused by an acceptor that has no identity yet. The request's
  // configuration is installed with the term; an older one than held, or one
  // this acceptor is not a member of, is refused (an error naming both).
  Result<AppendResponse> handle_proposer_elected(const ProposerGreeting& greeting,
                                                 const ProposerElected& request);

  // AppendRequest: a different term than the accepted proposer's is rejected
  // (a lower term gets a normal reply with the acceptor's term; a term the
  // acceptor has not accepted a ProposerElected for is an error); a
  // begin_lsn != end of written WAL is an error. Otherwise writes the bytes
  // and records commit/truncate LSNs to apply after the flush. A generation
  // other than that of the configuration held, or a configuration this
  // acceptor is not a member of, is an error.
  Result<AppendOutcome> handle_append_request(const AppendRequest& request);

  // ConfigurationUpdate from the proposer of the accepted term: persists a
  // newer configuration (durable when this returns) and answers with an
  // AppendResponse carrying its generation. A lower term gets the higher
  // term; another term than the accepted one, or an older configuration, is
  // an error. A removed member installs the configuration that removes it
  // (so that proposers greeting it learn it) and refuses votes and appends
  // from then on.
  Result<AppendResponse> handle_configuration_update(const ConfigurationUpdate& request);

  // WalReadRequest: the durable WAL [begin, end) of the accepted term's
  // history. Only for the proposer this acceptor accepted a ProposerElected
  // from in request.term; a lower request term gets an empty response with
  // the acceptor's term; a range outside the held WAL is an error.
  Result<WalReadResponse> handle_wal_read(const WalReadRequest& request);

  // --- Peer recovery (docs/consensus.md, "Peer recovery") ---
  // A member that is behind takes committed WAL from a peer safekeeper
  // instead of from the primary. The driver calls begin_peer_recovery() with
  // the peer's term history and commit_lsn (WAL below a commit_lsn is
  // committed: identical on every member that holds it, never truncated),
  // then append_peer_wal() for the bytes [fetch_from, target) in order, then
  // flush(), which makes them durable and raises commit_lsn to them. The
  // driver must not run it while a proposer streams to this acceptor; a
  // vote or a ProposerElected ends it (later appends are refused).
  // begin_peer_recovery:
  //  * truncates a divergent tail of this acceptor's WAL at the highest
  //    common point with the peer's history (never below commit_lsn: that
  //    would mean committed WAL differs, an error that changes nothing);
  //  * adopts the peer's history (up to its commit_lsn) durably, before any
  //    byte of it is written, unless this acceptor's own history already
  //    agrees with it below that commit_lsn;
  //  * never changes the promised term, the fence or the configuration:
  //    recovery only adds WAL that every future proposer holds anyway.
  // needs_bootstrap: this acceptor holds no WAL, shares no term with the
  // peer, or its end lies below the peer's timeline start (the peer removed
  // what it lacks): it can only be rebuilt from a copy (pull_timeline).
  struct PeerRecoveryPlan {
      bool needs_bootstrap = false;
      Lsn fetch_from = kInvalidLsn;  // == target: nothing to fetch
      Lsn target = kInvalidLsn;      // the peer's commit_lsn
  };
  Result<PeerRecoveryPlan> begin_peer_recovery(const TermHistory& peer_history, Lsn peer_commit_lsn,
                                               Lsn peer_timeline_start_lsn);
  // Writes peer WAL [begin, begin + size): begin must be the end of written
  // WAL and begin + size at most the plan's target. Not durable until flush().
  Status append_peer_wal(Lsn begin, const std::uint8_t* data, std::size_t size);
  // True between begin_peer_recovery() and its end (a vote or election).
  bool peer_recovery_active() const { return peer_recovery_target_ != kInvalidLsn; }

  // Flushes written WAL (one fsync for everything written so far) and
  // advances commit_lsn / truncate_lsn (capped at flush_lsn; never
  // decreasing). commit_lsn/truncate_lsn are persisted lazily: see
  // persist_horizons().
  Status flush();

  // The response reporting only durable WAL.
  AppendResponse make_append_response() const;

  // Persists the control file if commit_lsn / truncate_lsn advanced since the
  // last persist. The daemon calls this periodically and on shutdown; any
  // other persist (vote, election) also includes the latest values.
  Status persist_horizons();

  // The storage removed the WAL below `lsn` and has already made the new
  // timeline start durable (WAL retention): votes, WAL reads and later
  // persists start there. Never lowers it; `lsn` must not exceed commit_lsn.
  void wal_removed_below(Lsn lsn);

  // The storage reported that its last failure changed nothing and is not
  // permanent (the file system was full before anything was written; it
  // has since made flush_lsn() == its write position). Forgets the failure:
  // the in-memory view goes back to the last persisted term, history,
  // identity and fence, and writing resumes at the storage's flush LSN.
  // Only for that case: after any other storage failure the state of the
  // files is unknown and the acceptor must stay failed.
  void clear_transient_failure();

  // Hot-standby feedback to forward to the proposer (from consumers).
  void set_hot_standby_feedback(std::uint64_t xmin, std::uint64_t catalog_xmin);

  // True after a storage failure or an inconsistent recovered state; then
  // failure() says why and every handle_* call returns it.
  bool failed() const { return !failure_.ok(); }
  const Status& failure() const { return failure_; }

  const AcceptorDurableState& state() const { return state_; }            // in-memory view
  const AcceptorDurableState& durable_state() const { return durable_; }  // last persisted
  Lsn flush_lsn() const { return storage_->flush_lsn(); }
  Lsn write_lsn() const { return write_lsn_; }
  Term term() const { return state_.term; }
  Lsn commit_lsn() const { return state_.commit_lsn; }
  // last_log_term of the WAL actually held (history up to flush_lsn).
  Term last_log_term() const;
  NodeId node_id() const { return config_.node_id; }

private:
    Status persist();
    // persist(); on failure the term, history and identity in memory go back
    // to what is durable (a promise that was not made), while commit_lsn and
    // truncate_lsn, which others may have seen, stay.
    Status persist_or_forget();
    // Records the first storage failure; returns it with `context`.
    Status fail(const std::string& context, const Status& cause);
    Status check_identity(const ProposerGreeting& greeting) const;
    // Refuses a proposer below the fence (min_pg_timeline).
    Status check_fence(const ProposerGreeting& greeting) const;
    // Why a message of configuration `key` (its generation only, for
    // appends) is refused here; "" when it is not.
    std::string configuration_refusal(const ConfigurationKey& key, bool generation_only) const;
    bool accepted_term_is(Term term) const;

    AcceptorConfig config_;
    AcceptorStorage* storage_;
    AcceptorDurableState state_;
    AcceptorDurableState durable_;
    Status failure_;
    Lsn write_lsn_ = kInvalidLsn;         // end of written (maybe unflushed) WAL
    Lsn pending_commit_lsn_ = kInvalidLsn;    // from the last AppendRequest
    Lsn pending_truncate_lsn_ = kInvalidLsn;
    std::uint64_t hs_xmin_ = 0;
    std::uint64_t hs_catalog_xmin_ = 0;
    Lsn peer_recovery_target_ = kInvalidLsn;  // set by begin_peer_recovery
};

}  // namespace wp
