// The proposer's membership: slots for the configuration's members, which
// acceptors count, adopting a newer configuration, and driving a change
// C(g) -> J(g+1) = {old, new} -> C(g+2) = {new} while elected. The rules
// and the safety argument are in docs/consensus.md ("Membership change").
#include <algorithm>
#include <functional>

#include "walproposer/proposer.h"

namespace wp {

Member Proposer::slot_member(std::size_t k) const {
    return k < peers_.size() ? peers_[k].member : Member{};
}

bool Proposer::counts(std::size_t k) const {
    const Peer& p = peers_[k];
    if (p.retired) return false;
    return !configured() || membership_.is_member(p.member.id);
}

bool Proposer::is_quorum_of(const std::vector<std::size_t>& slots) const {
    std::vector<NodeId> ids;
    std::size_t n = 0;
    for (std::size_t k : slots) {
        if (!counts(k)) continue;
        ++n;
        ids.push_back(peers_[k].member.id);
    }
    if (!configured() || config_.unsafe_test_only_quorum_override != 0) {
        const std::size_t q = quorum();
        return q > 0 && n >= q;
    }
    return is_quorum(membership_, ids);
}

void Proposer::build_slots(TimeMs now) {
    if (!configured()) return;
    const MemberSet all = membership_.all_members();
    for (const Member& m : all) {
        auto it = std::find_if(peers_.begin(), peers_.end(),
                               [&m](const Peer& p) { return p.member.id == m.id; });
        if (it == peers_.end()) {
            Peer p;
            p.member = m;
            p.reconnect_at = now;
            peers_.push_back(std::move(p));
        } else {
            it->retired = false;
            it->member.address = m.address;
        }
    }
    for (Peer& p : peers_)
        if (p.member.id == 0 || !set_contains(all, p.member.id)) p.retired = true;
}

void Proposer::install_configuration(Configuration c, TimeMs now, ProposerOutput& out) {
    membership_ = std::move(c);
    out.persist_configuration = membership_;
    build_slots(now);
    // A retired slot keeps its connection only while it is streaming, to
    // learn the configuration that removes it (advance_membership).
    for (std::size_t k = 0; k < peers_.size(); ++k) {
        Peer& p = peers_[k];
        if (p.retired && p.state != AcceptorConnState::kOffline &&
            !(state_ == ProposerState::kElected && p.state == AcceptorConnState::kStreaming &&
              p.elected_acked))
            drop_peer(k, now, "not a member of " + format_configuration(membership_), true, out);
    }
    if (target_members_ && !membership_.is_joint() && same_set(*target_members_, membership_.members))
        target_members_.reset();
}

bool Proposer::adopt_configuration(const Configuration& c, std::size_t from, TimeMs now,
                                   ProposerOutput& out) {
    if (!(c.key() > membership_.key()) || !validate_configuration(c).ok()) return false;
    if (!configured()) {
        // A legacy proposer's driver addresses its own list of safekeepers
        // by index and cannot follow a configuration: it stays legacy, and
        // the acceptor refuses its votes (stale configuration).
        peers_[from].last_error = "safekeeper holds " + format_configuration(c) +
                                  " but this proposer has no configuration (generation 0)";
        return false;
    }
    log(out, LogLevel::kInfo,
        "acceptor " + std::to_string(from) + " holds a newer configuration " +
            format_configuration(c) + " (this proposer had " + format_configuration(membership_) +
            "); adopting it");
    install_configuration(c, now, out);
    if (state_ == ProposerState::kCampaigning || state_ == ProposerState::kElected) {
        // Votes and acknowledgements counted under the old configuration do
        // not count under the new one: start the campaign over.
        for (std::size_t k = 0; k < peers_.size(); ++k) drop_peer(k, now, "", true, out);
        backoff_until_ = now;
        set_state(ProposerState::kBackingOff, out);
    }
    return true;
}

Status Proposer::request_membership(MemberSet target) {
    if (!configured())
        return Status::invalid("this proposer has no membership configuration (generation 0); "
                               "a change needs one");
    Status s = validate_member_set(target);
    if (!s.ok()) return s;
    if (!membership_.is_joint() && same_set(target, membership_.members)) {
        target_members_.reset();
        return Status();
    }
    target_members_ = std::move(target);
    return Status();
}

void Proposer::advance_membership(TimeMs now, ProposerOutput& out) {
    if (!configured() || state_ != ProposerState::kElected) return;
    // Every streaming acceptor (a removed one too) learns the configuration.
    for (std::size_t k = 0; k < peers_.size(); ++k) {
        Peer& p = peers_[k];
        if (p.state != AcceptorConnState::kStreaming || !p.elected_acked ||
            p.sent_generation >= membership_.generation)
            continue;
        send(k, ConfigurationUpdate{term_, membership_}, now, out);
        p.sent_generation = membership_.generation;
    }
    for (std::size_t k = 0; k < peers_.size(); ++k) {
        const Peer& p = peers_[k];
        if (p.retired && p.state != AcceptorConnState::kOffline &&
            p.acked_generation >= membership_.generation)
            drop_peer(k, now, "removed by " + format_configuration(membership_), true, out);
    }
    if (config_.sync) return;  // a sync proposer finishes no change
    // A quorum must hold our ProposerElected and commit_lsn: the
    // configuration in force is then installed in our term on a quorum.
    std::vector<std::size_t> holding, persisted;
    std::vector<NodeId> caught_up;
    for (std::size_t k = 0; k < peers_.size(); ++k) {
        const Peer& p = peers_[k];
        if (!counts(k) || p.state != AcceptorConnState::kStreaming || !p.elected_acked) continue;
        if (p.flush_lsn >= commit_lsn_ && p.flush_lsn >= term_start_lsn_) {
            holding.push_back(k);
            caught_up.push_back(p.member.id);
        }
        if (p.acked_generation >= membership_.generation) persisted.push_back(k);
    }
    if (commit_lsn_ < term_start_lsn_ || !is_quorum_of(holding)) return;
    if (membership_.is_joint()) {
        // Leave the joint configuration only when it is durable on a quorum
        // of both sets (any later election finds it) and a majority of the
        // new set holds everything committed so far.
        if (!is_quorum_of(persisted) || !is_majority_of(*membership_.new_members, caught_up)) return;
        Configuration next;
        next.generation = membership_.generation + 1;
        next.created_term = term_;
        next.members = *membership_.new_members;
        log(out, LogLevel::kInfo,
            "membership change: joint configuration is on a quorum of both sets; switching to " +
                format_configuration(next));
        install_configuration(std::move(next), now, out);
        advance_membership(now, out);
        return;
    }
    if (!target_members_) return;
    Configuration next;
    next.generation = membership_.generation + 1;
    next.created_term = term_;
    if (config_.unsafe_test_only_skip_joint) {
        next.members = *target_members_;
    } else {
        next.members = membership_.members;
        next.new_members = *target_members_;
    }
    log(out, LogLevel::kInfo,
        "membership change: " + format_member_set(membership_.members) + " -> " +
            format_member_set(*target_members_) + " through " + format_configuration(next));
    install_configuration(std::move(next), now, out);
    // New members are connected by the next tick; they campaign as late
    // joiners (VoteRequest, then ProposerElected with this configuration).
    advance_membership(now, out);
}

Lsn Proposer::configured_commit_candidate() const {
    std::vector<std::pair<NodeId, Lsn>> lsns;
    std::vector<Lsn> flushed;
    for (std::size_t k = 0; k < peers_.size(); ++k) {
        const Peer& p = peers_[k];
        if (!counts(k) || p.state != AcceptorConnState::kStreaming || !p.elected_acked) continue;
        lsns.emplace_back(p.member.id, p.flush_lsn);
        flushed.push_back(p.flush_lsn);
    }
    const std::size_t q = config_.unsafe_test_only_quorum_override;
    if (q != 0) {
        if (flushed.size() < q) return kInvalidLsn;
        std::sort(flushed.begin(), flushed.end(), std::greater<Lsn>());
        return flushed[q - 1];
    }
    return quorum_lsn(membership_, lsns);
}

Lsn Proposer::configured_truncate_lsn() const {
    std::vector<std::pair<NodeId, Lsn>> lsns;
    for (std::size_t k = 0; k < peers_.size(); ++k) {
        const Peer& p = peers_[k];
        if (counts(k) && p.confirmed_term == term_) lsns.emplace_back(p.member.id, p.confirmed_flush);
    }
    return std::min(commit_lsn_, all_members_lsn(membership_, lsns));
}

}  // namespace wp
