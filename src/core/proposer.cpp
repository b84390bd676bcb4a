// The proposer's events and its streaming: the constructor, the driver's
// entry points (start, connections, messages, ticks, status), stepping down
// and becoming superseded, and, once elected, sending WAL (pump), counting
// the commit and truncate LSNs, and the sync proposer's fetching of the
// donor's WAL and its completion test (sync_done). The election itself
// (greetings, the campaign, votes, choosing the donor, ProposerElected) is
// in proposer_election.cpp.
#include "walproposer/proposer.h"

#include <algorithm>
#include <functional>

namespace wp {

const char* to_string(ProposerState state) {
    switch (state) {
        case ProposerState::kCollectingGreetings: return "collecting-greetings";
        case ProposerState::kCampaigning: return "campaigning";
        case ProposerState::kElected: return "elected";
        case ProposerState::kBackingOff: return "backing-off";
        case ProposerState::kSuperseded: return "superseded";
    }
    return "unknown";
}

const char* to_string(AcceptorConnState state) {
    switch (state) {
        case AcceptorConnState::kOffline: return "offline";
        case AcceptorConnState::kConnecting: return "connecting";
        case AcceptorConnState::kHandshake: return "handshake";
        case AcceptorConnState::kWaitingForElection: return "waiting-for-election";
        case AcceptorConnState::kVoting: return "voting";
        case AcceptorConnState::kStreaming: return "streaming";
    }
    return "unknown";
}

Proposer::Proposer(ProposerConfig config, WalReader* wal)
    : config_(std::move(config)), wal_(wal), peers_(config_.acceptor_count) {
    config_.greeting.protocol_version = kProtocolVersion;
    if (config_.sync) {
        // No WAL and no terms of its own: everything it sends comes from the
        // donor, through fetched_.
        config_.greeting.flags |= kGreetingFlagSync;
        config_.own_term_history.clear();
        wal_ = &fetched_;
    }
    own_history_ = config_.own_term_history;
    membership_ = config_.configuration;
    if (configured()) {
        peers_.clear();
        build_slots(0);
    }
    term_ = last_log_term(own_history_);
    rng_state_ = config_.random_seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    if (rng_state_ == 0) rng_state_ = 1;
}

std::size_t Proposer::quorum() const {
    if (config_.unsafe_test_only_quorum_override != 0) return config_.unsafe_test_only_quorum_override;
    // With a configuration: the majority of its (first) set.
    if (configured()) return membership_.members.size() / 2 + 1;
    return config_.acceptor_count / 2 + 1;
}

void Proposer::log(ProposerOutput& out, LogLevel level, std::string text) {
    out.log.push_back(LogLine{level, std::move(text)});
}

void Proposer::set_state(ProposerState s, ProposerOutput& out) {
    if (s == state_) return;
    state_ = s;
    out.state_changed = s;
}

void Proposer::send(std::size_t k, const Message& m, TimeMs now, ProposerOutput& out) {
    out.messages.push_back(OutgoingMessage{k, encode(m)});
    peers_[k].last_sent_at = now;
}

void Proposer::drop_peer(std::size_t k, TimeMs now, const std::string& why, bool request_disconnect,
                         ProposerOutput& out) {
    Peer& p = peers_[k];
    if (p.state == AcceptorConnState::kOffline) return;
    if (request_disconnect) out.disconnect.push_back(k);
    // Drop any message to k queued in this same output: it must not reach a
    // connection we asked to close (nor the next one).
    out.messages.erase(std::remove_if(out.messages.begin(), out.messages.end(),
                                      [k](const OutgoingMessage& m) { return m.acceptor == k; }),
                       out.messages.end());
    if (fetch_outstanding_ && fetch_from_ == k) fetch_outstanding_ = false;
    p.state = AcceptorConnState::kOffline;
    p.greeting.reset();
    p.vote.reset();
    p.elected_acked = false;
    p.sent_generation = 0;
    p.acked_generation = 0;
    p.reconnect_at = now + config_.reconnect_interval_ms;
    if (!why.empty()) p.last_error = why;
}

ProposerOutput Proposer::start(TimeMs now, Lsn local_flush_lsn) {
    ProposerOutput out;
    if (started_) return out;
    started_ = true;
    local_flush_lsn_ = local_flush_lsn;
    log(out, LogLevel::kInfo,
        "proposer starting: " + std::to_string(config_.acceptor_count) + " acceptors, quorum " +
            std::to_string(quorum()) + ", local WAL ends at " + format_lsn(local_flush_lsn) +
            ", own history " + format_history(own_history_));
    begin_collecting(now, out);
    out.state_changed = state_;
    return out;
}

ProposerOutput Proposer::on_connected(std::size_t k, TimeMs now) {
    ProposerOutput out;
    if (k >= peers_.size() || peers_[k].state != AcceptorConnState::kConnecting) return out;
    Peer& p = peers_[k];
    p.state = AcceptorConnState::kHandshake;
    p.last_received_at = now;
    send(k, config_.greeting, now, out);
    return out;
}

ProposerOutput Proposer::on_disconnected(std::size_t k, TimeMs now, const std::string& reason) {
    ProposerOutput out;
    if (k >= peers_.size() || peers_[k].state == AcceptorConnState::kOffline) return out;
    // A failed connection attempt repeats every reconnect interval while an
    // acceptor is down; the driver reports the reason once, so it is debug here.
    const LogLevel level =
        peers_[k].state == AcceptorConnState::kConnecting ? LogLevel::kDebug : LogLevel::kInfo;
    log(out, level, "acceptor " + std::to_string(k) + " disconnected in state " +
                        to_string(peers_[k].state) + ": " + reason);
    drop_peer(k, now, reason, false, out);
    if (state_ == ProposerState::kElected) update_commit(out);
    return out;
}

ProposerOutput Proposer::on_wal_available(Lsn end, TimeMs now) {
    ProposerOutput out;
    if (end > local_flush_lsn_) local_flush_lsn_ = end;
    if (state_ == ProposerState::kElected) pump(now, out);
    return out;
}

TimeMs Proposer::next_backoff() {
    // xorshift64*: deterministic jitter so competing proposers desynchronise.
    rng_state_ ^= rng_state_ >> 12;
    rng_state_ ^= rng_state_ << 25;
    rng_state_ ^= rng_state_ >> 27;
    const std::uint64_t r = rng_state_ * 0x2545F4914F6CDD1Dull;
    TimeMs base = config_.backoff_min_ms;
    for (unsigned i = 0; i < backoff_attempts_ && base < config_.backoff_max_ms; ++i) base *= 2;
    base = std::min(base, config_.backoff_max_ms);
    if (backoff_attempts_ < 32) ++backoff_attempts_;
    return base / 2 + (base ? r % (base + 1) : 0);
}

void Proposer::step_down(Term seen_term, std::size_t from, TimeMs now, ProposerOutput& out) {
    log(out, LogLevel::kWarning,
        "acceptor " + std::to_string(from) + " has term " + std::to_string(seen_term) +
            " higher than ours (" + std::to_string(term_) + "); stepping down in state " +
            to_string(state_));
    if (seen_term > term_) term_ = seen_term;
    for (std::size_t k = 0; k < peers_.size(); ++k) drop_peer(k, now, "", true, out);
    const TimeMs wait = next_backoff();
    backoff_until_ = now + wait;
    set_state(ProposerState::kBackingOff, out);
    log(out, LogLevel::kInfo, "campaigning again in " + std::to_string(wait) + " ms");
}

void Proposer::become_superseded(Term term, Lsn lsn, std::string reason, ProposerOutput& out) {
    superseded_by_term_ = term;
    superseded_at_lsn_ = lsn;
    superseded_reason_ = std::move(reason);
    log(out, LogLevel::kError,
        "this primary is superseded (term " + std::to_string(term) + " at " + format_lsn(lsn) +
            "): " + superseded_reason_ + "; it will not campaign again");
    for (std::size_t k = 0; k < peers_.size(); ++k) drop_peer(k, 0, "", true, out);
    set_state(ProposerState::kSuperseded, out);
}

ProposerOutput Proposer::on_message(std::size_t k, const std::uint8_t* payload, std::size_t size,
                                    TimeMs now) {
    ProposerOutput out;
    if (k >= peers_.size()) return out;
    Peer& p = peers_[k];
    if (p.state == AcceptorConnState::kOffline || p.state == AcceptorConnState::kConnecting) return out;
    p.last_received_at = now;
    Result<Message> decoded = decode(payload, size);
    if (!decoded.ok()) {
        log(out, LogLevel::kWarning, "acceptor " + std::to_string(k) + " sent a bad message: " + decoded.message());
        drop_peer(k, now, "bad message: " + decoded.message(), true, out);
        return out;
    }
    const Message& m = decoded.value();
    if (auto* g = std::get_if<AcceptorGreeting>(&m)) {
        handle_acceptor_greeting(k, *g, now, out);
    } else if (auto* v = std::get_if<VoteResponse>(&m)) {
        handle_vote_response(k, *v, now, out);
    } else if (auto* a = std::get_if<AppendResponse>(&m)) {
        handle_append_response(k, *a, now, out);
    } else if (auto* r = std::get_if<WalReadResponse>(&m)) {
        handle_wal_read_response(k, *r, now, out);
    } else {
        drop_peer(k, now, std::string("unexpected message ") + message_name(m), true, out);
    }
    if (state_ == ProposerState::kElected) pump(now, out);
    return out;
}

void Proposer::handle_append_response(std::size_t k, const AppendResponse& a, TimeMs now,
                                      ProposerOutput& out) {
    Peer& p = peers_[k];
    if (p.state != AcceptorConnState::kStreaming) {
        drop_peer(k, now, "unexpected AppendResponse", true, out);
        return;
    }
    p.term = a.term;
    if (a.term > term_) {
        step_down(a.term, k, now, out);
        return;
    }
    if (a.term != term_) {
        drop_peer(k, now, "AppendResponse of another term", true, out);
        return;
    }
    p.hs_xmin = a.hs_xmin;
    p.hs_catalog_xmin = a.hs_catalog_xmin;
    p.commit_lsn = a.commit_lsn;
    p.acked_generation = a.generation;
    if (!p.elected_acked) {
        // Reply to ProposerElected: WAL ends where we must continue.
        p.elected_acked = true;
        p.sent_lsn = a.flush_lsn;
        p.flush_lsn = a.flush_lsn;
    } else {
        if (a.flush_lsn > p.sent_lsn) {
            drop_peer(k, now, "acceptor reports flush beyond what we sent", true, out);
            return;
        }
        p.flush_lsn = std::max(p.flush_lsn, a.flush_lsn);
    }
    // WAL this acceptor holds as ours, after any truncation of this term.
    p.confirmed_term = term_;
    p.confirmed_flush = p.flush_lsn;
    update_commit(out);
}

void Proposer::handle_wal_read_response(std::size_t k, const WalReadResponse& r, TimeMs now,
                                        ProposerOutput& out) {
    Peer& p = peers_[k];
    if (p.state != AcceptorConnState::kStreaming || !fetch_outstanding_ || fetch_from_ != k) {
        drop_peer(k, now, "unexpected WalReadResponse", true, out);
        return;
    }
    fetch_outstanding_ = false;
    p.term = r.term;
    if (r.term > term_) {
        step_down(r.term, k, now, out);
        return;
    }
    if (r.term != term_) {
        drop_peer(k, now, "WalReadResponse of another term", true, out);
        return;
    }
    // A window moved while the read was out is answered by the next read.
    if (r.begin_lsn == fetched_.end() && fetched_.end() + r.wal.size() <= term_start_lsn_)
        fetched_.bytes.insert(fetched_.bytes.end(), r.wal.begin(), r.wal.end());
}

void Proposer::sync_fetch(TimeMs now, ProposerOutput& out) {
    const Lsn target = term_start_lsn_;
    Lsn need = target;  // the lowest LSN a streaming peer still needs
    for (const Peer& p : peers_)
        if (p.state == AcceptorConnState::kStreaming && p.elected_acked) need = std::min(need, p.sent_lsn);
    if (need >= target) return;
    if (need < fetched_.begin || need > fetched_.end()) {
        fetched_.begin = need;  // a late or truncated peer: start the window at its point
        fetched_.bytes.clear();
    } else if (need - fetched_.begin >= config_.max_append_bytes * 8) {
        fetched_.bytes.erase(fetched_.bytes.begin(),
                             fetched_.bytes.begin() + static_cast<std::ptrdiff_t>(need - fetched_.begin));
        fetched_.begin = need;
    }
    if (fetch_outstanding_ || fetched_.end() >= target ||
        fetched_.end() - need >= config_.max_inflight_bytes)
        return;
    // Any peer that acknowledged our ProposerElected holds our history up to
    // its flush LSN; ask the one that holds the most.
    std::size_t source = peers_.size();
    for (std::size_t k = 0; k < peers_.size(); ++k) {
        const Peer& p = peers_[k];
        if (p.state != AcceptorConnState::kStreaming || !p.elected_acked || p.flush_lsn <= fetched_.end())
            continue;
        if (source == peers_.size() || p.flush_lsn > peers_[source].flush_lsn) source = k;
    }
    if (source == peers_.size()) return;
    WalReadRequest request;
    request.term = term_;
    request.begin_lsn = fetched_.end();
    request.end_lsn = std::min({target, peers_[source].flush_lsn,
                                fetched_.end() + static_cast<Lsn>(kSyncReadBytes)});
    fetch_outstanding_ = true;
    fetch_from_ = source;
    send(source, request, now, out);
}

Status Proposer::FetchedWal::read_wal(Lsn from, Lsn to, std::vector<std::uint8_t>& out) {
    if (from < begin || to > end() || from > to)
        return Status::error("WAL [" + format_lsn(from) + ", " + format_lsn(to) +
                             ") is not in the fetched window [" + format_lsn(begin) + ", " +
                             format_lsn(end()) + ")");
    out.insert(out.end(), bytes.begin() + static_cast<std::ptrdiff_t>(from - begin),
               bytes.begin() + static_cast<std::ptrdiff_t>(to - begin));
    return Status();
}

bool Proposer::sync_done() const {
    if (!config_.sync || state_ != ProposerState::kElected || commit_lsn_ < term_start_lsn_) return false;
    std::vector<std::size_t> acknowledged;
    for (std::size_t k = 0; k < peers_.size(); ++k) {
        const Peer& p = peers_[k];
        if (p.state == AcceptorConnState::kStreaming && p.elected_acked && p.commit_lsn >= term_start_lsn_)
            acknowledged.push_back(k);
    }
    return is_quorum_of(acknowledged);
}

void Proposer::update_commit(ProposerOutput& out) {
    if (state_ != ProposerState::kElected) return;
    std::vector<Lsn> flushed;
    for (const Peer& p : peers_)
        if (p.state == AcceptorConnState::kStreaming && p.elected_acked) flushed.push_back(p.flush_lsn);
    const std::size_t q = quorum();
    if (configured() || (flushed.size() >= q && q > 0)) {
        // With a configuration: a majority of every set in force.
        std::sort(flushed.begin(), flushed.end(), std::greater<Lsn>());
        const Lsn candidate = configured() ? configured_commit_candidate() : flushed[q - 1];
        // Raft figure 8: WAL below the term's start is committed only through
        // a majority holding our term, i.e. flushed at or past its start.
        const bool own_term_ok = candidate >= term_start_lsn_ || config_.unsafe_test_only_commit_old_terms;
        if (own_term_ok && candidate > commit_lsn_) {
            commit_lsn_ = candidate;
            out.commit_lsn = commit_lsn_;
            // The first commit of this term makes everything below its start
            // committed and proven ours: older own terms no longer matter.
            if (own_history_.size() > 1 && commit_lsn_ >= term_start_lsn_ &&
                !config_.unsafe_test_only_keep_full_history) {
                own_history_ = TermHistory{TermLsn{term_, term_start_lsn_}};
                out.persist_own_term_history = own_history_;
            }
        }
    }
    // truncate_lsn: WAL every acceptor holds as ours in this term (a flush it
    // acknowledged after our ProposerElected, never the pre-truncation flush
    // of its greeting), capped at commit. An acceptor not heard from in this
    // term holds it back.
    Lsn lowest = commit_lsn_;
    if (configured()) {
        lowest = configured_truncate_lsn();  // every member of every set in force
    } else {
        for (const Peer& p : peers_)
            lowest = std::min(lowest, p.confirmed_term == term_ ? p.confirmed_flush : kInvalidLsn);
    }
    truncate_lsn_ = std::max(truncate_lsn_, lowest);
}

void Proposer::pump(TimeMs now, ProposerOutput& out) {
    advance_membership(now, out);
    if (state_ != ProposerState::kElected) return;
    if (commit_lsn_ != commit_noticed_) {
        commit_noticed_ = commit_lsn_;
        commit_noticed_at_ = now;
    }
    const TimeMs notice_delay = config_.sync ? 0 : config_.commit_notice_delay_ms;
    const bool commit_notice_due = now >= commit_noticed_at_ + notice_delay;
    if (config_.sync) sync_fetch(now, out);
    // What can be sent: the local WAL, or for a sync proposer the fetched window.
    const Lsn available = config_.sync ? fetched_.end() : local_flush_lsn_;
    for (std::size_t k = 0; k < peers_.size(); ++k) {
        Peer& p = peers_[k];
        if (p.state != AcceptorConnState::kStreaming || !p.elected_acked || p.retired) continue;
        bool sent_any = false;
        if (config_.sync && p.sent_lsn < fetched_.begin) continue;  // the window moves to it first
        while (p.sent_lsn < available && p.sent_lsn - p.flush_lsn < config_.max_inflight_bytes) {
            const Lsn end = std::min<Lsn>(available, p.sent_lsn + config_.max_append_bytes);
            AppendRequest r;
            r.term = term_;
            r.begin_lsn = p.sent_lsn;
            r.end_lsn = end;
            r.commit_lsn = commit_lsn_;
            r.truncate_lsn = truncate_lsn_;
            r.generation = p.sent_generation;
            // The WAL is read straight into the encoded message, after its
            // head: one copy per acceptor.
            std::vector<std::uint8_t> payload;
            encode_append_request_head(r, payload);
            const std::size_t head = payload.size();
            Status s = wal_->read_wal(r.begin_lsn, r.end_lsn, payload);
            if (!s.ok() || payload.size() - head != end - r.begin_lsn) {
                const std::string why = "cannot read WAL [" + format_lsn(r.begin_lsn) + ", " +
                                        format_lsn(end) + "): " + (s.ok() ? "short read" : s.message());
                log(out, LogLevel::kError, "acceptor " + std::to_string(k) + ": " + why);
                drop_peer(k, now, why, true, out);
                if (configured()) {
                    // Its peers hold that WAL: give its recovery time.
                    p.reconnect_at = now + config_.peer_recovery_wait_ms;
                    log(out, LogLevel::kWarning,
                        "acceptor " + std::to_string(k) +
                            " needs WAL this primary no longer has; it recovers from its peers "
                            "(reconnecting in " +
                            std::to_string(config_.peer_recovery_wait_ms) + " ms)");
                }
                break;
            }
            out.messages.push_back(OutgoingMessage{k, std::move(payload)});
            p.last_sent_at = now;
            p.sent_lsn = end;
            p.sent_commit_lsn = commit_lsn_;
            sent_any = true;
        }
        if (p.state != AcceptorConnState::kStreaming) continue;
        if (!sent_any && ((p.sent_commit_lsn != commit_lsn_ && commit_notice_due) ||
                          now >= p.last_sent_at + config_.heartbeat_interval_ms)) {
            AppendRequest r;
            r.term = term_;
            r.begin_lsn = r.end_lsn = p.sent_lsn;
            r.commit_lsn = commit_lsn_;
            r.truncate_lsn = truncate_lsn_;
            r.generation = p.sent_generation;
            send(k, r, now, out);
            p.sent_commit_lsn = commit_lsn_;
        }
    }
}

Lsn Proposer::primary_retention_lsn() const {
    if (!configured() || state_ != ProposerState::kElected) return truncate_lsn_;
    Lsn lowest = commit_lsn_;
    for (std::size_t k = 0; k < peers_.size(); ++k) {
        const Peer& p = peers_[k];
        if (counts(k) && p.state == AcceptorConnState::kStreaming && p.confirmed_term == term_)
            lowest = std::min(lowest, p.confirmed_flush);
    }
    return std::max(truncate_lsn_, lowest);
}

ProposerOutput Proposer::on_tick(TimeMs now) {
    ProposerOutput out;
    if (!started_ || state_ == ProposerState::kSuperseded) return out;
    for (std::size_t k = 0; k < peers_.size(); ++k) {
        Peer& p = peers_[k];
        if (p.state != AcceptorConnState::kOffline && p.state != AcceptorConnState::kConnecting &&
            now >= p.last_received_at + config_.response_timeout_ms) {
            log(out, LogLevel::kWarning, "acceptor " + std::to_string(k) + " timed out in state " +
                                             to_string(p.state));
            drop_peer(k, now, "no response for " + std::to_string(config_.response_timeout_ms) + " ms", true, out);
        } else if (p.state == AcceptorConnState::kConnecting &&
                   now >= p.last_received_at + config_.response_timeout_ms) {
            drop_peer(k, now, "connect timeout", true, out);
        }
    }
    switch (state_) {
        case ProposerState::kBackingOff:
            if (now >= backoff_until_) begin_collecting(now, out);
            break;
        case ProposerState::kCollectingGreetings:
        case ProposerState::kCampaigning:
            if (now >= campaign_started_at_ + config_.election_timeout_ms) {
                log(out, LogLevel::kWarning, std::string("no quorum within the election timeout while ") +
                                                 to_string(state_));
                for (std::size_t k = 0; k < peers_.size(); ++k) drop_peer(k, now, "", true, out);
                backoff_until_ = now + next_backoff();
                set_state(ProposerState::kBackingOff, out);
                break;
            }
            [[fallthrough]];
        case ProposerState::kElected:
            for (std::size_t k = 0; k < peers_.size(); ++k) {
                Peer& p = peers_[k];
                if (p.state == AcceptorConnState::kOffline && !p.retired && now >= p.reconnect_at) {
                    p.state = AcceptorConnState::kConnecting;
                    p.last_received_at = now;
                    out.connect.push_back(k);
                }
            }
            if (state_ == ProposerState::kElected) pump(now, out);
            break;
        case ProposerState::kSuperseded:
            break;
    }
    return out;
}

std::optional<TimeMs> Proposer::next_deadline() const {
    if (state_ != ProposerState::kElected || config_.sync || config_.commit_notice_delay_ms == 0)
        return std::nullopt;
    for (const Peer& p : peers_)
        if (p.state == AcceptorConnState::kStreaming && p.elected_acked && !p.retired &&
            p.sent_commit_lsn != commit_lsn_)
            return commit_noticed_at_ + config_.commit_notice_delay_ms;
    return std::nullopt;
}

ProposerStatus Proposer::status() const {
    ProposerStatus s;
    s.state = state_;
    s.term = term_;
    s.commit_lsn = commit_lsn_;
    s.truncate_lsn = truncate_lsn_;
    s.term_start_lsn = term_start_lsn_;
    s.local_flush_lsn = local_flush_lsn_;
    s.term_history = state_ == ProposerState::kElected ? elected_history_ : own_history_;
    s.quorum = quorum();
    s.superseded_by_term = superseded_by_term_;
    s.superseded_at_lsn = superseded_at_lsn_;
    s.superseded_reason = superseded_reason_;
    s.fence_pg_timeline = fence_pg_timeline_;
    s.sync_system_id = sync_system_id_;
    if (config_.sync && state_ == ProposerState::kElected) s.sync_lsn = term_start_lsn_;
    s.sync_done = sync_done();
    s.configuration = membership_;
    if (target_members_) s.target_members = *target_members_;
    for (std::size_t k = 0; k < peers_.size(); ++k) {
        const Peer& p = peers_[k];
        AcceptorStatus a;
        a.state = p.state;
        a.node_id = p.greeting && p.member.id == 0 ? p.greeting->node_id : p.member.id;
        a.address = p.member.address;
        a.member = counts(k);
        a.generation = p.acked_generation;
        a.term = p.term;
        a.flush_lsn = p.flush_lsn;
        a.commit_lsn = p.commit_lsn;
        a.sent_lsn = p.sent_lsn;
        a.hs_xmin = p.hs_xmin;
        a.hs_catalog_xmin = p.hs_catalog_xmin;
        a.last_error = p.last_error;
        s.acceptors.push_back(a);
    }
    const HotStandbyFeedback feedback = hot_standby_feedback();
    s.hs_xmin = feedback.xmin;
    s.hs_catalog_xmin = feedback.catalog_xmin;
    return s;
}

Lsn Proposer::sent_lsn() const {
    Lsn sent = kInvalidLsn;
    for (const Peer& p : peers_) sent = std::max(sent, p.sent_lsn);
    return sent;
}

Proposer::HotStandbyFeedback Proposer::hot_standby_feedback() const {
    HotStandbyFeedback f;
    for (const Peer& p : peers_) {
        if (p.state != AcceptorConnState::kStreaming) continue;
        if (p.hs_xmin && (!f.xmin || p.hs_xmin < f.xmin)) f.xmin = p.hs_xmin;
        if (p.hs_catalog_xmin && (!f.catalog_xmin || p.hs_catalog_xmin < f.catalog_xmin))
            f.catalog_xmin = p.hs_catalog_xmin;
    }
    return f;
}

}  // namespace wp
