#include "walproposer/acceptor.h"

#include <algorithm>

namespace wp {

bool TimelineIdentity::operator==(const TimelineIdentity& o) const {
    return tenant_id == o.tenant_id && timeline_id == o.timeline_id && system_id == o.system_id &&
           pg_version == o.pg_version && pg_timeline == o.pg_timeline &&
           wal_segment_size == o.wal_segment_size;
}

bool AcceptorDurableState::operator==(const AcceptorDurableState& o) const {
    return term == o.term && term_history == o.term_history && commit_lsn == o.commit_lsn &&
           truncate_lsn == o.truncate_lsn && identity == o.identity &&
           timeline_start_lsn == o.timeline_start_lsn;
}

Acceptor::Acceptor(AcceptorConfig config, AcceptorStorage* storage, AcceptorDurableState initial)
    : config_(config), storage_(storage), state_(std::move(initial)), durable_(state_) {
    write_lsn_ = storage_->flush_lsn();
    // commit/truncate LSNs never exceed what we hold (defensive on load).
    state_.commit_lsn = std::min(state_.commit_lsn, write_lsn_);
    state_.truncate_lsn = std::min(state_.truncate_lsn, write_lsn_);
    pending_commit_lsn_ = state_.commit_lsn;
    pending_truncate_lsn_ = state_.truncate_lsn;
}

Status Acceptor::persist() {
    Status s = storage_->persist_state(state_);
    if (s.ok()) durable_ = state_;
    return s;
}

Term Acceptor::last_log_term() const {
    return wp::last_log_term(history_up_to(state_.term_history, flush_lsn()));
}

Result<AcceptorGreeting> Acceptor::handle_greeting(const ProposerGreeting& g) {
    if (g.protocol_version != kProtocolVersion)
        return Status::error("unsupported protocol version " + std::to_string(g.protocol_version) +
                             " (this acceptor speaks " + std::to_string(kProtocolVersion) + ")");
    if (g.system_id == 0) return Status::error("proposer sent system id 0");
    TimelineIdentity& id = state_.identity;
    if (id.system_id == 0) {
        id.tenant_id = g.tenant_id;
        id.timeline_id = g.timeline_id;
        id.system_id = g.system_id;
        id.pg_version = g.pg_version;
        id.pg_timeline = g.pg_timeline;
        id.wal_segment_size = g.wal_segment_size;
        Status s = persist();
        if (!s.ok()) return Status::error("cannot persist timeline identity: " + s.message());
    } else {
        if (g.system_id != id.system_id)
            return Status::error("system id mismatch: proposer " + std::to_string(g.system_id) +
                                 ", acceptor holds " + std::to_string(id.system_id));
        if (g.wal_segment_size != id.wal_segment_size)
            return Status::error("WAL segment size mismatch: proposer " +
                                 std::to_string(g.wal_segment_size) + ", acceptor holds " +
                                 std::to_string(id.wal_segment_size));
        if (g.tenant_id != id.tenant_id || g.timeline_id != id.timeline_id)
            return Status::error("tenant/timeline id mismatch");
        if (g.pg_timeline < id.pg_timeline)
            return Status::error("proposer's PostgreSQL timeline " + std::to_string(g.pg_timeline) +
                                 " is older than the timeline " + std::to_string(id.pg_timeline) +
                                 " this acceptor holds (stale primary?)");
        if (g.pg_timeline > id.pg_timeline || g.pg_version != id.pg_version) {
            id.pg_timeline = g.pg_timeline;
            id.pg_version = g.pg_version;
            Status s = persist();
            if (!s.ok()) return Status::error("cannot persist timeline identity: " + s.message());
        }
    }
    AcceptorGreeting reply;
    reply.node_id = config_.node_id;
    reply.term = state_.term;
    reply.last_log_term = last_log_term();
    reply.flush_lsn = flush_lsn();
    return reply;
}

Result<VoteResponse> Acceptor::handle_vote_request(const VoteRequest& request) {
    VoteResponse reply;
    if (request.term > state_.term) {
        state_.term = request.term;
        Status s = persist();
        if (!s.ok()) {
            state_.term = durable_.term;
            return Status::error("cannot persist vote: " + s.message());
        }
        reply.vote_granted = true;
    }
    reply.term = state_.term;
    reply.flush_lsn = flush_lsn();
    reply.truncate_lsn = state_.truncate_lsn;
    reply.term_history = history_up_to(state_.term_history, reply.flush_lsn);
    return reply;
}

Result<AppendResponse> Acceptor::handle_proposer_elected(const ProposerElected& request) {
    if (request.term < state_.term) return make_append_response();  // carries the higher term
    if (request.term_history.empty() || request.term_history.back().term != request.term ||
        !is_well_formed(request.term_history))
        return Status::error("ProposerElected history must be well formed and end with its term");
    // Anything written but not flushed is discarded with the truncation below
    // or kept and flushed; flush first so flush_lsn is exact.
    if (write_lsn_ != flush_lsn()) {
        Status s = flush();
        if (!s.ok()) return s;
    }
    const Lsn flush = flush_lsn();
    const bool empty = (flush == kInvalidLsn);
    const HighestCommonPoint hcp = highest_common_point(request.term_history, state_.term_history, flush);
    // The proposer computed the start from our VoteResponse; we recompute from
    // our current state and use the lower of the two (we may have lost
    // unflushed WAL in a crash since, or the proposer may be more conservative).
    Lsn cut = std::min(hcp.lsn, request.start_streaming_lsn);
    if (empty) {
        cut = request.start_streaming_lsn;
    } else if (cut < state_.commit_lsn) {
        return Status::error("refusing to truncate WAL at " + format_lsn(cut) +
                             " below commit_lsn " + format_lsn(state_.commit_lsn));
    }
    // Also when cut == flush < write_lsn_: the storage may hold written,
    // unacknowledged bytes past its flush LSN (an incomplete record), and
    // streaming resumes at the cut.
    if (empty || cut < write_lsn_) {
        Status s = storage_->truncate_wal(cut);
        if (!s.ok()) return Status::error("cannot truncate WAL: " + s.message());
        write_lsn_ = storage_->flush_lsn();
        if (empty && state_.timeline_start_lsn == kInvalidLsn) state_.timeline_start_lsn = cut;
        state_.truncate_lsn = std::min(state_.truncate_lsn, write_lsn_);
        pending_truncate_lsn_ = std::min(pending_truncate_lsn_, write_lsn_);
        pending_commit_lsn_ = std::min(pending_commit_lsn_, write_lsn_);
    }
    state_.term = request.term;
    state_.term_history = request.term_history;
    Status s = persist();
    if (!s.ok()) {
        state_ = durable_;
        return Status::error("cannot persist term history: " + s.message());
    }
    return make_append_response();
}

Result<AppendOutcome> Acceptor::handle_append_request(const AppendRequest& request) {
    AppendOutcome outcome;
    if (request.term < state_.term) {
        outcome.reply = make_append_response();  // carries the higher term
        return outcome;
    }
    if (request.term != state_.term || state_.term_history.empty() ||
        state_.term_history.back().term != request.term)
        return Status::error("AppendRequest for term " + std::to_string(request.term) +
                             " without an accepted ProposerElected for that term");
    if (request.begin_lsn != write_lsn_)
        return Status::error("AppendRequest begins at " + format_lsn(request.begin_lsn) +
                             " but WAL ends at " + format_lsn(write_lsn_));
    if (request.end_lsn - request.begin_lsn != request.wal.size())
        return Status::error("AppendRequest length does not match its LSN range");
    if (!request.wal.empty()) {
        Status s = storage_->write_wal(request.begin_lsn, request.wal.data(), request.wal.size());
        if (!s.ok()) return Status::error("cannot write WAL: " + s.message());
        write_lsn_ = request.end_lsn;
    }
    pending_commit_lsn_ = std::max(pending_commit_lsn_, request.commit_lsn);
    pending_truncate_lsn_ = std::max(pending_truncate_lsn_, request.truncate_lsn);
    outcome.needs_flush = true;
    return outcome;
}

Status Acceptor::flush() {
    if (write_lsn_ != storage_->flush_lsn()) {
        Status s = storage_->flush_wal();
        if (!s.ok()) return s;
    }
    const Lsn flush = storage_->flush_lsn();
    // Only WAL that matches the accepted proposer's history is ever below the
    // flush point here, so its commit_lsn applies up to our flush.
    state_.commit_lsn = std::max(state_.commit_lsn, std::min(pending_commit_lsn_, flush));
    state_.truncate_lsn = std::max(state_.truncate_lsn, std::min(pending_truncate_lsn_, flush));
    return Status();
}

AppendResponse Acceptor::make_append_response() const {
    AppendResponse r;
    r.term = state_.term;
    r.flush_lsn = storage_->flush_lsn();
    r.commit_lsn = state_.commit_lsn;
    r.hs_xmin = hs_xmin_;
    r.hs_catalog_xmin = hs_catalog_xmin_;
    return r;
}

Status Acceptor::persist_horizons() {
    if (state_.commit_lsn == durable_.commit_lsn && state_.truncate_lsn == durable_.truncate_lsn)
        return Status();
    return persist();
}

void Acceptor::set_hot_standby_feedback(std::uint64_t xmin, std::uint64_t catalog_xmin) {
    hs_xmin_ = xmin;
    hs_catalog_xmin_ = catalog_xmin;
}

}  // namespace wp
