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
// for a PostgreSQL ErrorResponse). Rejections that the proposer must learn
// about (a higher term) are not errors: they are normal responses carrying the
// acceptor's term.
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
    // Removes all WAL at and after `end` and makes that durable; afterwards
    // flush_lsn() == end. On an empty store this sets where WAL starts.
    virtual Status truncate_wal(Lsn end) = 0;
    // End of durable WAL; 0 when the store holds no WAL.
    virtual Lsn flush_lsn() const = 0;
};

struct AcceptorConfig {
    NodeId node_id = 0;
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
    // for a new timeline); the WAL end is taken from storage->flush_lsn().
    Acceptor(AcceptorConfig config, AcceptorStorage* storage, AcceptorDurableState initial);

    // ProposerGreeting: adopts the identity if unknown (persisting it), else
    // rejects a different system id, segment size, tenant/timeline, protocol
    // version, or a PG timeline older than the one held (a newer one is adopted
    // and persisted). Returns the AcceptorGreeting to send.
    Result<AcceptorGreeting> handle_greeting(const ProposerGreeting& greeting);

    // VoteRequest: grants iff request.term > term; the new term is persisted
    // before this returns. Always answers (refusals carry the higher term).
    Result<VoteResponse> handle_vote_request(const VoteRequest& request);

    // ProposerElected: if request.term < term, answers with the higher term and
    // changes nothing. Otherwise truncates WAL at the highest common point
    // (never below commit_lsn: that is an error), then persists term and the
    // proposer's history, then answers with its flush_lsn (where the proposer
    // must start streaming). Truncation happens before the history is
    // persisted, so a crash in between leaves a consistent old state.
    Result<AppendResponse> handle_proposer_elected(const ProposerElected& request);

    // AppendRequest: a different term than the accepted proposer's is rejected
    // (a lower term gets a normal reply with the acceptor's term; a term the
    // acceptor has not accepted a ProposerElected for is an error); a
    // begin_lsn != end of written WAL is an error. Otherwise writes the bytes
    // and records commit/truncate LSNs to apply after the flush.
    Result<AppendOutcome> handle_append_request(const AppendRequest& request);

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

    // Hot-standby feedback to forward to the proposer (from consumers).
    void set_hot_standby_feedback(std::uint64_t xmin, std::uint64_t catalog_xmin);

    const AcceptorDurableState& state() const { return state_; }  // in-memory view
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

    AcceptorConfig config_;
    AcceptorStorage* storage_;
    AcceptorDurableState state_;
    AcceptorDurableState durable_;
    Lsn write_lsn_ = kInvalidLsn;         // end of written (maybe unflushed) WAL
    Lsn pending_commit_lsn_ = kInvalidLsn;    // from the last AppendRequest
    Lsn pending_truncate_lsn_ = kInvalidLsn;
    std::uint64_t hs_xmin_ = 0;
    std::uint64_t hs_catalog_xmin_ = 0;
};

}  // namespace wp
