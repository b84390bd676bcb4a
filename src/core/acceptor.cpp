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
           timeline_start_lsn == o.timeline_start_lsn && min_pg_timeline == o.min_pg_timeline &&
           configuration == o.configuration;
}

Acceptor::Acceptor(AcceptorConfig config, AcceptorStorage* storage, AcceptorDurableState initial)
    : config_(config), storage_(storage), state_(std::move(initial)), durable_(state_) {
    write_lsn_ = storage_->flush_lsn();
    // commit_lsn only ever covers durable WAL, so a durable commit_lsn above
    // the recovered end means acknowledged WAL is gone. Lowering it silently
    // would let this node vote and donate as if nothing was lost.
    const Lsn horizon = std::max(state_.commit_lsn, state_.truncate_lsn);
    if (horizon > write_lsn_)
        failure_ = Status::error("durable commit_lsn " + format_lsn(state_.commit_lsn) +
                                 " / truncate_lsn " + format_lsn(state_.truncate_lsn) +
                                 " lie above the recovered end of WAL " + format_lsn(write_lsn_) +
                                 ": acknowledged WAL is missing; refusing to serve this timeline");
    pending_commit_lsn_ = state_.commit_lsn;
    pending_truncate_lsn_ = state_.truncate_lsn;
}

Status Acceptor::fail(const std::string& context, const Status& cause) {
    Status error = Status::error(context + ": " + cause.message());
    if (failure_.ok()) failure_ = error;
    return error;
}

Status Acceptor::persist() {
    Status s = storage_->persist_state(state_);
    if (!s.ok()) return fail("cannot persist control file", s);
    durable_ = state_;
    return s;
}

Status Acceptor::persist_or_forget() {
    Status s = persist();
    if (!s.ok()) {
        state_.term = durable_.term;
        state_.term_history = durable_.term_history;
        state_.identity = durable_.identity;
        state_.min_pg_timeline = durable_.min_pg_timeline;
        state_.configuration = durable_.configuration;
    }
    return s;
}

Term Acceptor::last_log_term() const {
    return wp::last_log_term(history_up_to(state_.term_history, flush_lsn()));
}

Status Acceptor::check_identity(const ProposerGreeting& g) const {
    if (g.protocol_version != kProtocolVersion)
        return Status::error("unsupported protocol version " + std::to_string(g.protocol_version) +
                             " (this acceptor speaks " + std::to_string(kProtocolVersion) + ")");
    const TimelineIdentity& id = state_.identity;
    if (g.is_sync()) {
        // A sync proposer has no identity of its own: it works on whatever
        // this timeline holds, and adopts nothing.
        if (id.system_id != 0 && (g.tenant_id != id.tenant_id || g.timeline_id != id.timeline_id))
            return Status::error("tenant/timeline id mismatch");
        return Status();
    }
    if (g.system_id == 0) return Status::error("proposer sent system id 0");
    if (id.system_id == 0) return Status();  // adopted with the first ProposerElected
    if (g.system_id != id.system_id)
        return Status::error("system id mismatch: proposer " + std::to_string(g.system_id) +
                             ", acceptor holds " + std::to_string(id.system_id));
    if (g.wal_segment_size != id.wal_segment_size)
        return Status::error("WAL segment size mismatch: proposer " +
                             std::to_string(g.wal_segment_size) + ", acceptor holds " +
                             std::to_string(id.wal_segment_size));
    if (g.tenant_id != id.tenant_id || g.timeline_id != id.timeline_id)
        return Status::error("tenant/timeline id mismatch");
    // A fenced proposer (below min_pg_timeline) gets its greeting answered,
    // so it learns from the fence in it that it is superseded; check_fence
    // refuses its election.
    if (g.pg_timeline < id.pg_timeline && g.pg_timeline >= state_.min_pg_timeline)
        return Status::error("proposer's PostgreSQL timeline " + std::to_string(g.pg_timeline) +
                             " is older than the timeline " + std::to_string(id.pg_timeline) +
                             " this acceptor holds (stale primary?)");
    return Status();
}

Result<AcceptorGreeting> Acceptor::handle_greeting(const ProposerGreeting& g) {
    if (failed()) return failure_;
    Status valid = check_identity(g);
    if (!valid.ok()) return valid;
    AcceptorGreeting reply;
    reply.node_id = config_.node_id;
    reply.term = state_.term;
    reply.last_log_term = last_log_term();
    reply.flush_lsn = flush_lsn();
    reply.system_id = state_.identity.system_id;
    reply.wal_segment_size = state_.identity.wal_segment_size;
    reply.pg_timeline = state_.identity.pg_timeline;
    reply.min_pg_timeline = state_.min_pg_timeline;
    reply.configuration = state_.configuration;
    return reply;
}

bool Acceptor::accepted_term_is(Term term) const {
    return state_.term == term && !state_.term_history.empty() &&
           state_.term_history.back().term == term;
}

std::string Acceptor::configuration_refusal(const ConfigurationKey& key, bool generation_only) const {
    const Configuration& held = state_.configuration;
    const bool older = generation_only ? key.generation < held.generation : key < held.key();
    if (older)
        return "stale configuration: the proposer's configuration is generation " +
               std::to_string(key.generation) + " (term " + std::to_string(key.created_term) +
               ") but safekeeper " + std::to_string(config_.node_id) + " holds " +
               format_configuration(held);
    if (generation_only && key.generation > held.generation)
        return "unknown configuration generation " + std::to_string(key.generation) +
               ": safekeeper " + std::to_string(config_.node_id) + " holds " +
               format_configuration(held) + " (send ConfigurationUpdate first)";
    const bool same = generation_only ? key.generation == held.generation : key == held.key();
    if (same && held.generation != 0 && !held.is_member(config_.node_id))
        return "not a member: safekeeper " + std::to_string(config_.node_id) +
               " is not in its configuration " + format_configuration(held);
    return "";
}

Status Acceptor::check_fence(const ProposerGreeting& g) const {
    if (g.is_sync() || g.pg_timeline >= state_.min_pg_timeline) return Status();
    return Status::error("fenced: this proposer's PostgreSQL timeline " +
                         std::to_string(g.pg_timeline) + " is below the minimum timeline " +
                         std::to_string(state_.min_pg_timeline) +
                         " a failover set on this safekeeper; it can never be elected again");
}

Result<VoteResponse> Acceptor::handle_vote_request(const VoteRequest& request) {
    if (failed()) return failure_;
    peer_recovery_target_ = kInvalidLsn;
    // Make the reply exact: WAL written before this vote becomes durable now,
    // so nothing later moves the flush LSN the proposer places us by.
    if (write_lsn_ != flush_lsn()) {
        Status s = flush();
        if (!s.ok()) return s;
    }
    VoteResponse reply;
    reply.refusal = configuration_refusal(request.configuration, false);
    if (request.term > state_.term && reply.refusal.empty()) {
        state_.term = request.term;
        state_.min_pg_timeline = std::max(state_.min_pg_timeline, request.min_pg_timeline);
        Status s = persist_or_forget();
        if (!s.ok()) return s;
        reply.vote_granted = true;
    }
    reply.term = state_.term;
    reply.configuration = state_.configuration;
    reply.flush_lsn = flush_lsn();
    reply.truncate_lsn = state_.truncate_lsn;
    reply.term_history = history_up_to(state_.term_history, reply.flush_lsn);
    reply.tail_lsn = reply.flush_lsn;
    if (reply.flush_lsn != kInvalidLsn) {
        Lsn begin = reply.flush_lsn > kVoteTailBytes ? reply.flush_lsn - kVoteTailBytes : 0;
        begin = std::max(begin, state_.timeline_start_lsn);
        if (begin < reply.flush_lsn) {
            Status s = storage_->read_wal(begin, reply.flush_lsn, reply.tail);
            if (!s.ok()) return fail("cannot read the WAL tail for a vote", s);
            reply.tail_lsn = begin;
        }
    }
    return reply;
}

Result<AppendResponse> Acceptor::handle_proposer_elected(const ProposerGreeting& greeting,
                                                         const ProposerElected& request) {
    if (failed()) return failure_;
    peer_recovery_target_ = kInvalidLsn;
    if (request.term < state_.term) return make_append_response();  // carries the higher term
    if (request.term_history.empty() || request.term_history.back().term != request.term ||
        !is_well_formed(request.term_history))
        return Status::error("ProposerElected history must be well formed and end with its term");
    Status valid = check_identity(greeting);
    if (valid.ok()) valid = check_fence(greeting);
    if (!valid.ok()) return valid;
    if (greeting.is_sync() && state_.identity.system_id == 0)
        return Status::error("a sync proposer cannot be elected on an acceptor that holds no "
                             "timeline yet (no identity to keep)");
    const Configuration& config = request.configuration;
    if (config.key() < state_.configuration.key())
        return Status::error(configuration_refusal(config.key(), false));
    if (config.generation != 0 && !config.is_member(config_.node_id))
        return Status::error("not a member: safekeeper " + std::to_string(config_.node_id) +
                             " is not in the proposer's configuration " +
                             format_configuration(config));
    // Anything written but not flushed is discarded with the truncation below
    // or kept and flushed; flush first so flush_lsn is exact.
    if (write_lsn_ != flush_lsn()) {
        Status s = flush();
        if (!s.ok()) return s;
    }
    const bool repeated = state_.term == request.term && !state_.term_history.empty() &&
                          state_.term_history.back().term == request.term &&
                          !config_.unsafe_test_only_trust_elected_start;
    if (repeated) {
        // The elected proposer of this term reconnected, or an old connection
        // delivers a late copy. Everything we hold of this term came from that
        // proposer, so nothing is cut; it continues from our end of WAL.
        if (request.term_history != state_.term_history)
            return Status::error("ProposerElected for term " + std::to_string(request.term) +
                                 " carries history " + format_history(request.term_history) +
                                 " but this acceptor accepted " +
                                 format_history(state_.term_history) + " for that term");
        if (config.key() > state_.configuration.key()) {
            state_.configuration = config;
            Status s = persist_or_forget();
            if (!s.ok()) return s;
        }
        return make_append_response();
    }
    const Lsn flush = flush_lsn();
    const bool empty = (flush == kInvalidLsn);
    const HighestCommonPoint hcp = highest_common_point(request.term_history, state_.term_history, flush);
    Lsn cut = hcp.lsn;
    if (config_.unsafe_test_only_trust_elected_start) {
        cut = empty ? request.start_streaming_lsn : std::min(hcp.lsn, request.start_streaming_lsn);
    } else if (request.start_streaming_lsn != hcp.lsn) {
        // The proposer placed us by our VoteResponse; our state has changed
        // since (this is a stale or reordered message). Cutting at its start
        // could remove WAL acknowledged after that vote.
        return Status::error("ProposerElected for term " + std::to_string(request.term) +
                             " starts at " + format_lsn(request.start_streaming_lsn) +
                             " but the highest common point with this acceptor's WAL is " +
                             format_lsn(hcp.lsn) + " (stale or reordered message)");
    }
    if (!empty && !hcp.found && cut > state_.timeline_start_lsn)
        return Status::error("this acceptor's WAL shares no term with the proposer's history " +
                             format_history(request.term_history) + "; its WAL below " +
                             format_lsn(cut) +
                             " cannot be matched (recover this member from its peers)");
    if (!empty && cut < state_.commit_lsn)
        return Status::error("refusing to truncate WAL at " + format_lsn(cut) +
                             " below commit_lsn " + format_lsn(state_.commit_lsn));
    TimelineIdentity& id = state_.identity;
    if (id.system_id == 0) {
        // First election on this timeline: the storage needs the identity
        // (segment size) before it can place WAL.
        id.tenant_id = greeting.tenant_id;
        id.timeline_id = greeting.timeline_id;
        id.system_id = greeting.system_id;
        id.wal_segment_size = greeting.wal_segment_size;
        id.pg_timeline = greeting.pg_timeline;
        id.pg_version = greeting.pg_version;
        Status s = persist_or_forget();
        if (!s.ok()) return s;
    }
    // Also when cut == flush < write_lsn_: the storage may hold written,
    // unacknowledged bytes past its flush LSN (an incomplete record), and
    // streaming resumes at the cut.
    if (empty || cut < write_lsn_) {
        Status s = storage_->truncate_wal(cut);
        if (!s.ok()) return fail("cannot truncate WAL", s);
        write_lsn_ = storage_->flush_lsn();
        if (empty || cut < state_.timeline_start_lsn) state_.timeline_start_lsn = cut;
        state_.truncate_lsn = std::min(state_.truncate_lsn, write_lsn_);
        pending_truncate_lsn_ = std::min(pending_truncate_lsn_, write_lsn_);
        pending_commit_lsn_ = std::min(pending_commit_lsn_, write_lsn_);
    }
    if (!greeting.is_sync()) {
        id.pg_timeline = std::max(id.pg_timeline, greeting.pg_timeline);
        id.pg_version = greeting.pg_version;
    }
    state_.term = request.term;
    state_.term_history = request.term_history;
    state_.configuration = config;
    Status s = persist_or_forget();
    if (!s.ok()) return s;
    return make_append_response();
}

Result<AppendOutcome> Acceptor::handle_append_request(const AppendRequest& request) {
    if (failed()) return failure_;
    AppendOutcome outcome;
    if (request.term < state_.term) {
        outcome.reply = make_append_response();  // carries the higher term
        return outcome;
    }
    if (request.term != state_.term || state_.term_history.empty() ||
        state_.term_history.back().term != request.term)
        return Status::error("AppendRequest for term " + std::to_string(request.term) +
                             " without an accepted ProposerElected for that term");
    const std::string refusal =
        configuration_refusal(ConfigurationKey{request.generation, 0}, true);
    if (!refusal.empty()) return Status::error(refusal);
    if (request.begin_lsn != write_lsn_)
        return Status::error("AppendRequest begins at " + format_lsn(request.begin_lsn) +
                             " but WAL ends at " + format_lsn(write_lsn_));
    if (request.end_lsn - request.begin_lsn != request.wal.size())
        return Status::error("AppendRequest length does not match its LSN range");
    if (!request.wal.empty()) {
        Status s = storage_->write_wal(request.begin_lsn, request.wal.data(), request.wal.size());
        if (!s.ok()) return fail("cannot write WAL", s);
        write_lsn_ = request.end_lsn;
    }
    pending_commit_lsn_ = std::max(pending_commit_lsn_, request.commit_lsn);
    pending_truncate_lsn_ = std::max(pending_truncate_lsn_, request.truncate_lsn);
    outcome.needs_flush = true;
    return outcome;
}

Result<AppendResponse> Acceptor::handle_configuration_update(const ConfigurationUpdate& request) {
    if (failed()) return failure_;
    if (request.term < state_.term) return make_append_response();  // carries the higher term
    if (!accepted_term_is(request.term))
        return Status::error("ConfigurationUpdate for term " + std::to_string(request.term) +
                             " without an accepted ProposerElected for that term");
    Status valid = validate_configuration(request.configuration);
    if (!valid.ok()) return valid.with_context("ConfigurationUpdate");
    const ConfigurationKey key = request.configuration.key();
    if (key < state_.configuration.key())
        return Status::error(configuration_refusal(key, false));
    if (key == state_.configuration.key()) {
        if (request.configuration != state_.configuration)
            return Status::error("ConfigurationUpdate carries " +
                                 format_configuration(request.configuration) +
                                 " but this safekeeper holds another configuration of that key: " +
                                 format_configuration(state_.configuration));
        return make_append_response();
    }
    state_.configuration = request.configuration;
    Status s = persist_or_forget();
    if (!s.ok()) return s;
    return make_append_response();
}

Result<WalReadResponse> Acceptor::handle_wal_read(const WalReadRequest& request) {
    if (failed()) return failure_;
    WalReadResponse reply;
    reply.term = state_.term;
    reply.begin_lsn = request.begin_lsn;
    if (request.term < state_.term) return reply;  // carries the higher term, no bytes
    if (request.term != state_.term || state_.term_history.empty() ||
        state_.term_history.back().term != request.term)
        return Status::error("WalReadRequest for term " + std::to_string(request.term) +
                             " without an accepted ProposerElected for that term");
    if (request.end_lsn < request.begin_lsn || request.end_lsn - request.begin_lsn > kMaxWalPayloadBytes)
        return Status::error("WalReadRequest range is invalid or too large");
    if (request.begin_lsn < state_.timeline_start_lsn || request.end_lsn > flush_lsn())
        return Status::error("WalReadRequest [" + format_lsn(request.begin_lsn) + ", " +
                             format_lsn(request.end_lsn) + ") lies outside the WAL held here [" +
                             format_lsn(state_.timeline_start_lsn) + ", " + format_lsn(flush_lsn()) + ")");
    if (request.begin_lsn == request.end_lsn) return reply;
    Status s = storage_->read_wal(request.begin_lsn, request.end_lsn, reply.wal);
    // Not a storage failure of this acceptor's state (e.g. a segment already
    // removed below the horizon): the request fails, the acceptor stays up.
    if (!s.ok()) return Status::error("cannot read WAL for a WalReadRequest: " + s.message());
    return reply;
}

Result<Acceptor::PeerRecoveryPlan> Acceptor::begin_peer_recovery(const TermHistory& peer_history,
                                                                Lsn peer_commit_lsn,
                                                                Lsn peer_timeline_start_lsn) {
    if (failed()) return failure_;
    peer_recovery_target_ = kInvalidLsn;
    if (!is_well_formed(peer_history))
        return Status::invalid("the peer's term history is not well formed");
    if (write_lsn_ != flush_lsn()) {
        Status s = flush();
        if (!s.ok()) return s;
    }
    PeerRecoveryPlan plan;
    plan.target = peer_commit_lsn;
    const Lsn flush = flush_lsn();
    const TermHistory committed = history_up_to(peer_history, peer_commit_lsn);
    if (flush == kInvalidLsn || committed.empty()) {
        plan.needs_bootstrap = flush == kInvalidLsn && !committed.empty();
        plan.fetch_from = plan.needs_bootstrap ? kInvalidLsn : peer_commit_lsn;
        return plan;
    }
    // Where this acceptor's WAL stops agreeing with the peer's committed WAL.
    const HighestCommonPoint hcp = highest_common_point(committed, state_.term_history, flush);
    if (!hcp.found) {
        plan.needs_bootstrap = true;
        return plan;
    }
    const Lsn cut = std::min(hcp.lsn, flush);
    if (cut >= peer_commit_lsn) {
        plan.fetch_from = plan.target;  // nothing committed that we lack
        return plan;
    }
    if (cut < flush) {
        if (cut < state_.commit_lsn)
            return Status::error("peer recovery: the peer's committed WAL differs from this "
                                 "acceptor's below its commit_lsn " +
                                 format_lsn(state_.commit_lsn) + " (at " + format_lsn(cut) +
                                 "); refusing to truncate");
    }
    if (cut < peer_timeline_start_lsn) {
        plan.needs_bootstrap = true;
        return plan;
    }
    if (cut < flush) {
        Status s = storage_->truncate_wal(cut);
        if (!s.ok()) return fail("cannot truncate WAL", s);
        write_lsn_ = storage_->flush_lsn();
        state_.truncate_lsn = std::min(state_.truncate_lsn, write_lsn_);
        pending_truncate_lsn_ = std::min(pending_truncate_lsn_, write_lsn_);
        pending_commit_lsn_ = std::min(pending_commit_lsn_, write_lsn_);
    }
    // Keep our own history when it already says what the peer's says below
    // its commit_lsn (it may extend further: an accepted proposer's).
    const HighestCommonPoint agree = highest_common_point(state_.term_history, committed, peer_commit_lsn);
    if (!agree.found || agree.lsn < peer_commit_lsn) {
        state_.term_history = committed;
        Status s = persist_or_forget();
        if (!s.ok()) return s;
    }
    plan.fetch_from = write_lsn_;
    peer_recovery_target_ = peer_commit_lsn;
    return plan;
}

Status Acceptor::append_peer_wal(Lsn begin, const std::uint8_t* data, std::size_t size) {
    if (failed()) return failure_;
    if (peer_recovery_target_ == kInvalidLsn)
        return Status::invalid("peer recovery is not in progress (a proposer took over)");
    if (begin != write_lsn_ || begin + size > peer_recovery_target_)
        return Status::invalid("peer WAL [" + format_lsn(begin) + ", " + format_lsn(begin + size) +
                               ") does not continue this acceptor's WAL at " +
                               format_lsn(write_lsn_) + " within the recovery target " +
                               format_lsn(peer_recovery_target_));
    if (size == 0) return Status();
    Status s = storage_->write_wal(begin, data, size);
    if (!s.ok()) return fail("cannot write WAL", s);
    write_lsn_ = begin + size;
    // Everything below the peer's commit_lsn is committed.
    pending_commit_lsn_ = std::max(pending_commit_lsn_, write_lsn_);
    return Status();
}

Status Acceptor::flush() {
    if (failed()) return failure_;
    if (write_lsn_ != storage_->flush_lsn()) {
        Status s = storage_->flush_wal();
        if (!s.ok()) return fail("cannot flush WAL", s);
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
    r.generation = state_.configuration.generation;
    return r;
}

Status Acceptor::persist_horizons() {
    if (failed()) return failure_;
    if (state_.commit_lsn == durable_.commit_lsn && state_.truncate_lsn == durable_.truncate_lsn)
        return Status();
    return persist();
}

void Acceptor::wal_removed_below(Lsn lsn) {
    if (lsn > state_.commit_lsn) return;  // never: the storage refuses it as well
    state_.timeline_start_lsn = std::max(state_.timeline_start_lsn, lsn);
    durable_.timeline_start_lsn = std::max(durable_.timeline_start_lsn, lsn);
}

void Acceptor::clear_transient_failure() {
    failure_ = Status();
    state_.term = durable_.term;
    state_.term_history = durable_.term_history;
    state_.identity = durable_.identity;
    state_.min_pg_timeline = durable_.min_pg_timeline;
    write_lsn_ = storage_->flush_lsn();
    pending_commit_lsn_ = std::min(pending_commit_lsn_, write_lsn_);
    pending_truncate_lsn_ = std::min(pending_truncate_lsn_, write_lsn_);
}

void Acceptor::set_hot_standby_feedback(std::uint64_t xmin, std::uint64_t catalog_xmin) {
    hs_xmin_ = xmin;
    hs_catalog_xmin_ = catalog_xmin;
}

}  // namespace wp
