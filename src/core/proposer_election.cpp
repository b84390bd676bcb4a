// The proposer's election: collecting greetings, the checks that make a
// proposer superseded before it campaigns (fenced, lagging, behind the
// quorum; for a sync proposer the fence and the system id), the campaign
// and its votes, choosing the donor and the term's start (with the checks
// that the quorum's WAL is this primary's), and ProposerElected to each
// voter. The events that lead here and the streaming that follows are in
// proposer.cpp.
#include "walproposer/proposer.h"

#include <algorithm>
#include <optional>
#include <string>

namespace wp {

void Proposer::begin_collecting(TimeMs now, ProposerOutput& out) {
    set_state(ProposerState::kCollectingGreetings, out);
    elected_history_.clear();
    campaign_started_at_ = now;
    for (std::size_t k = 0; k < peers_.size(); ++k) {
        if (peers_[k].state == AcceptorConnState::kOffline && !peers_[k].retired) {
            peers_[k].state = AcceptorConnState::kConnecting;
            peers_[k].last_received_at = now;
            out.connect.push_back(k);
        }
    }
}

void Proposer::handle_acceptor_greeting(std::size_t k, const AcceptorGreeting& g, TimeMs now,
                                        ProposerOutput& out) {
    Peer& p = peers_[k];
    if (p.state != AcceptorConnState::kHandshake) {
        drop_peer(k, now, "unexpected AcceptorGreeting", true, out);
        return;
    }
    if (configured() && g.node_id != p.member.id) {
        const std::string why = "node id mismatch: slot " + std::to_string(k) + " (" +
                                p.member.address.to_string() + ") is member " +
                                std::to_string(p.member.id) + " but node " +
                                std::to_string(g.node_id) + " answered";
        log(out, LogLevel::kWarning, why);
        drop_peer(k, now, why, true, out);
        return;
    }
    p.greeting = g;
    p.term = g.term;
    p.flush_lsn = g.flush_lsn;
    if (!config_.sync && g.min_pg_timeline > config_.greeting.pg_timeline) {
        become_superseded(g.term, g.flush_lsn,
                          "fenced: acceptor " + std::to_string(k) +
                              " requires PostgreSQL timeline " + std::to_string(g.min_pg_timeline) +
                              " or later (set by a failover), this primary is on timeline " +
                              std::to_string(config_.greeting.pg_timeline),
                          out);
        return;
    }
    if ((state_ == ProposerState::kCampaigning || state_ == ProposerState::kElected) && g.term > term_) {
        step_down(g.term, k, now, out);
        return;
    }
    // A newer configuration: adopt it (`p` may be invalid afterwards). While
    // collecting, this greeting still counts if k is a member of it.
    if (adopt_configuration(g.configuration, k, now, out)) {
        if (state_ != ProposerState::kCollectingGreetings || peers_[k].retired) return;
    }
    Peer& q = peers_[k];
    if (q.state != AcceptorConnState::kHandshake) return;
    q.state = AcceptorConnState::kWaitingForElection;
    if (state_ == ProposerState::kCollectingGreetings) {
        maybe_start_campaign(now, out);
    } else if (state_ == ProposerState::kCampaigning || state_ == ProposerState::kElected) {
        send_vote_request(k, now, out);
    }
}

void Proposer::maybe_start_campaign(TimeMs now, ProposerOutput& out) {
    std::vector<std::size_t> greeted, ahead_of_us;
    Term max_term = term_;
    Term ahead_term = 0;
    Lsn ahead_lsn = kInvalidLsn;
    for (std::size_t k = 0; k < peers_.size(); ++k) {
        const Peer& p = peers_[k];
        if (!p.greeting || !counts(k)) continue;
        greeted.push_back(k);
        max_term = std::max(max_term, p.greeting->term);
        // WAL past our own end, from a term later than any we know: written by
        // another primary.
        if (p.greeting->flush_lsn > local_flush_lsn_ &&
            p.greeting->last_log_term > last_log_term(own_history_)) {
            ahead_of_us.push_back(k);
            if (p.greeting->last_log_term > ahead_term) {
                ahead_term = p.greeting->last_log_term;
                ahead_lsn = p.greeting->flush_lsn;
            }
        }
    }
    if (!is_quorum_of(greeted)) return;
    if (config_.sync) {
        // Fence every PostgreSQL timeline a quorum member holds or was
        // fenced at: only a node promoted after this sync can be elected.
        std::uint64_t system_id = 0;
        std::uint32_t fence = 0;
        for (const Peer& p : peers_) {
            if (!p.greeting || p.greeting->system_id == 0) continue;
            if (system_id != 0 && p.greeting->system_id != system_id) {
                become_superseded(0, kInvalidLsn,
                                  "the safekeepers disagree on the system id (" +
                                      std::to_string(system_id) + " and " +
                                      std::to_string(p.greeting->system_id) +
                                      "): they do not hold one timeline",
                                  out);
                return;
            }
            system_id = p.greeting->system_id;
            fence = std::max({fence, p.greeting->pg_timeline + 1, p.greeting->min_pg_timeline});
        }
        if (system_id == 0) {
            become_superseded(0, kInvalidLsn,
                              "no safekeeper of the quorum holds this timeline: nothing to sync "
                              "(check the tenant and timeline ids)",
                              out);
            return;
        }
        fence_pg_timeline_ = fence;
        sync_system_id_ = system_id;
    } else if (own_history_.empty() && config_.inherited_wal_end != kInvalidLsn &&
               !config_.unsafe_test_only_inherit_unchecked) {
        // A promoted standby: the best WAL among the greetings is what an
        // election would make it take. Refuse before any vote if it lies
        // above the switch point, so the attempt changes nothing.
        const AcceptorGreeting* best = nullptr;
        for (const Peer& p : peers_) {
            if (!p.greeting) continue;
            if (!best || p.greeting->last_log_term > best->last_log_term ||
                (p.greeting->last_log_term == best->last_log_term &&
                 p.greeting->flush_lsn > best->flush_lsn))
                best = &*p.greeting;
        }
        if (best && best->flush_lsn > config_.inherited_wal_end) {
            become_superseded(best->last_log_term, best->flush_lsn,
                              lagging_reason(best->flush_lsn), out);
            return;
        }
    }
    if (!config_.sync && is_quorum_of(ahead_of_us)) {
        become_superseded(ahead_term, ahead_lsn,
                          "a quorum of acceptors holds WAL of a later term beyond this primary's end of WAL " +
                              format_lsn(local_flush_lsn_),
                          out);
        return;
    }
    term_ = max_term + 1;
    campaign_started_at_ = now;
    set_state(ProposerState::kCampaigning, out);
    log(out, LogLevel::kInfo, "campaigning for term " + std::to_string(term_));
    for (std::size_t k = 0; k < peers_.size(); ++k)
        if (peers_[k].state == AcceptorConnState::kWaitingForElection) send_vote_request(k, now, out);
}

void Proposer::send_vote_request(std::size_t k, TimeMs now, ProposerOutput& out) {
    peers_[k].state = AcceptorConnState::kVoting;
    peers_[k].vote.reset();
    send(k, VoteRequest{term_, config_.sync ? fence_pg_timeline_ : 0, membership_.key()}, now, out);
}

void Proposer::handle_vote_response(std::size_t k, const VoteResponse& v, TimeMs now, ProposerOutput& out) {
    Peer& p = peers_[k];
    if (p.state != AcceptorConnState::kVoting) {
        drop_peer(k, now, "unexpected VoteResponse", true, out);
        return;
    }
    p.term = v.term;
    p.flush_lsn = v.flush_lsn;
    if (v.term > term_) {
        step_down(v.term, k, now, out);
        return;
    }
    if (!v.refusal.empty()) {
        log(out, LogLevel::kWarning, "acceptor " + std::to_string(k) + " refused its vote: " + v.refusal);
        p.last_error = v.refusal;
    }
    if (adopt_configuration(v.configuration, k, now, out)) return;
    p.vote = v;
    p.state = AcceptorConnState::kWaitingForElection;
    if (state_ == ProposerState::kCampaigning) {
        maybe_become_elected(now, out);
    } else if (state_ == ProposerState::kElected && counts(k)) {
        send_elected(k, now, out);  // late joiner: granted or already in our term
    }
}

void Proposer::maybe_become_elected(TimeMs now, ProposerOutput& out) {
    std::vector<std::size_t> voters;
    const Peer* donor = nullptr;
    Term donor_llt = 0;
    for (std::size_t k = 0; k < peers_.size(); ++k) {
        const Peer& p = peers_[k];
        if (!p.vote || !p.vote->vote_granted || p.vote->term != term_ || !counts(k)) continue;
        voters.push_back(k);
        const Term llt = last_log_term(p.vote->term_history);
        if (!donor || llt > donor_llt || (llt == donor_llt && p.vote->flush_lsn > donor->vote->flush_lsn)) {
            donor = &p;
            donor_llt = llt;
        }
    }
    if (!is_quorum_of(voters)) return;
    const std::size_t grants = voters.size();
    const Lsn donor_flush = donor->vote->flush_lsn;
    const TermHistory donor_history = history_up_to(donor->vote->term_history, donor_flush);
    TermHistory history;
    Lsn start;
    if (config_.sync) {
        if (donor_flush == kInvalidLsn) {
            become_superseded(term_, kInvalidLsn,
                              "the voting safekeepers hold no WAL for this timeline: nothing to sync",
                              out);
            return;
        }
        // The donor's WAL is the best of the quorum: everything any primary
        // may have acknowledged lies below its end.
        history = donor_history;
        start = donor_flush;
    } else if (donor_flush == kInvalidLsn && donor_history.empty()) {
        start = config_.timeline_start_lsn;  // first election on empty acceptors
    } else {
        if (donor_flush > local_flush_lsn_) {
            become_superseded(donor_llt, donor_flush,
                              "the quorum's WAL extends to " + format_lsn(donor_flush) +
                                  " beyond this primary's end of WAL " + format_lsn(local_flush_lsn_),
                              out);
            return;
        }
        Lsn known_own_below = own_history_.empty() ? kInvalidLsn : own_history_.front().lsn;
        const bool inheriting = own_history_.empty() && config_.inherited_wal_end != kInvalidLsn;
        if (inheriting && config_.unsafe_test_only_inherit_unchecked) {
            known_own_below = donor_flush;
        } else if (inheriting) {
            // A promoted standby holds the quorum's WAL only up to its switch
            // point: WAL above it was committed after it stopped receiving.
            if (donor_flush > config_.inherited_wal_end) {
                become_superseded(donor_llt, donor_flush, lagging_reason(donor_flush), out);
                return;
            }
            known_own_below = config_.inherited_wal_end;
        }
        if (const std::optional<TermLsn> foreign =
                first_foreign_entry(own_history_, donor_history, donor_flush, known_own_below)) {
            become_superseded(foreign->term, foreign->lsn,
                              "the quorum holds WAL of term " + std::to_string(foreign->term) + " from " +
                                  format_lsn(foreign->lsn) + " that this primary did not write (quorum history " +
                                  format_history(donor_history) + ", terms of this primary " +
                                  format_history(own_history_) + ")",
                              out);
            return;
        }
        // Terms say whose WAL it is; bytes prove it. A data directory restored
        // from a snapshot keeps our terms but not our WAL after the snapshot.
        if (!config_.unsafe_test_only_skip_content_check &&
            !(inheriting && config_.unsafe_test_only_inherit_unchecked) &&
            !verify_donor_tail(*donor->vote, donor_llt, out))
            return;
        history = donor_history;
        start = donor_flush;
    }
    history.push_back(TermLsn{term_, start});
    // Bounded history: drop what lies below the horizon every member holds
    // (the highest truncate_lsn a voter reports) and terms that wrote nothing.
    Lsn horizon = kInvalidLsn;
    for (std::size_t k : voters) horizon = std::max(horizon, peers_[k].vote->truncate_lsn);
    elected_history_ = config_.unsafe_test_only_keep_full_history ? history
                                                                  : trim_history(history, std::min(horizon, start));
    term_start_lsn_ = start;
    backoff_attempts_ = 0;
    if (!config_.sync) {
        // Remember that we authored this term (LSN clamped so the list stays
        // well formed; only the terms matter).
        own_history_.push_back(
            TermLsn{term_, own_history_.empty() ? start : std::max(start, own_history_.back().lsn)});
        if (own_history_.size() > kMaxTermHistoryEntries) own_history_.erase(own_history_.begin());
        out.persist_own_term_history = own_history_;
    } else {
        local_flush_lsn_ = start;
        fetched_.begin = start;
        fetched_.bytes.clear();
        fetch_outstanding_ = false;
    }
    set_state(ProposerState::kElected, out);
    log(out, LogLevel::kInfo,
        "elected in term " + std::to_string(term_) + " with " + std::to_string(grants) +
            " votes; term starts at " + format_lsn(start) + ", history " +
            format_history(elected_history_));
    for (std::size_t k = 0; k < peers_.size(); ++k)
        if (peers_[k].vote && peers_[k].state == AcceptorConnState::kWaitingForElection && counts(k))
            send_elected(k, now, out);
}

bool Proposer::verify_donor_tail(const VoteResponse& donor, Term donor_llt, ProposerOutput& out) {
    if (donor.tail.empty()) return true;  // the donor holds no bytes to keep
    std::vector<std::uint8_t> local;
    Status s = wal_->read_wal(donor.tail_lsn, donor.flush_lsn, local);
    if (!s.ok() || local.size() != donor.tail.size()) {
        become_superseded(donor_llt, donor.tail_lsn,
                          "cannot read this primary's WAL [" + format_lsn(donor.tail_lsn) + ", " +
                              format_lsn(donor.flush_lsn) + ") to compare it with the quorum's: " +
                              (s.ok() ? std::string("short read") : s.message()),
                          out);
        return false;
    }
    std::size_t i = 0;
    while (i < local.size() && local[i] == donor.tail[i]) ++i;
    if (i == local.size()) return true;
    become_superseded(
        donor_llt, donor.tail_lsn + i,
        "the quorum's WAL differs from this primary's WAL at " + format_lsn(donor.tail_lsn + i) +
            " (compared [" + format_lsn(donor.tail_lsn) + ", " + format_lsn(donor.flush_lsn) +
            ")): this data directory is not the primary that wrote it (restored snapshot or copy?)",
        out);
    return false;
}

std::string Proposer::lagging_reason(Lsn quorum_end) const {
    return "promoted before catching up: this node's PostgreSQL timeline " +
           std::to_string(config_.greeting.pg_timeline) + " starts at " +
           format_lsn(config_.inherited_wal_end) + " but the quorum's WAL ends at " +
           format_lsn(quorum_end) +
           "; WAL the quorum committed is missing here (sync the safekeepers and promote a "
           "standby that has replayed up to the sync LSN)";
}

void Proposer::send_elected(std::size_t k, TimeMs now, ProposerOutput& out) {
    Peer& p = peers_[k];
    const HighestCommonPoint hcp =
        highest_common_point(elected_history_, p.vote->term_history, p.vote->flush_lsn);
    ProposerElected m;
    m.term = term_;
    m.start_streaming_lsn = hcp.lsn;
    m.term_history = elected_history_;
    m.configuration = membership_;
    p.sent_generation = membership_.generation;
    p.state = AcceptorConnState::kStreaming;
    p.elected_acked = false;
    p.sent_lsn = hcp.lsn;
    p.sent_commit_lsn = kInvalidLsn;
    send(k, m, now, out);
}

}  // namespace wp
