// wpsim's invariant checks: World's checking methods (see invariants.h).
#include <algorithm>
#include <cstring>

#include "world.h"

namespace wpsim {

void World::on_elected(int p) {
    SimProposer& sp = proposers_[p];
    ++stats_->elections;
    const Term t = sp.proposer->term();
    if (const auto e = elected_.find(t); e != elected_.end()) {
        fail("invariant 1 (one proposer per term)",
             "term " + std::to_string(t) + " elected proposer " + std::to_string(e->second.first) +
                 "#" + std::to_string(e->second.second) + " and now proposer " + std::to_string(p) +
                 "#" + std::to_string(sp.incarnation));
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
        sp.wal.bytes.clear();  // its WAL in this term: rebuilt from the acceptors of the term
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
    if (sp.wal.bytes.size() < need ||
        (need > 0 && std::memcmp(sp.wal.bytes.data(), committed_.data(), need) != 0)) {
        std::size_t i = 0;
        while (i < need && i < sp.wal.bytes.size() && sp.wal.bytes[i] == committed_[i]) ++i;
        fail("invariant 2/6 (committed WAL lost: a primary whose WAL diverges was elected)",
             "proposer " + std::to_string(p) + " elected in term " + std::to_string(t) +
                 " but its WAL differs from the WAL committed in earlier terms at " +
                 format_lsn(kTimelineStart + i) + " (committed up to " + format_lsn(must_hold) +
                 ")");
    }
    // The same, stated for failover (a promoted standby's WAL is a prefix of
    // the committed WAL plus its own): the elected proposer's own WAL holds
    // every byte committed in earlier terms below its term start.
    {
        const Lsn below = std::min(st.term_start_lsn, committed_before_term(t));
        if (below > kTimelineStart) {
            const std::size_t n = below - kTimelineStart;
            if (sp.wal.bytes.size() < n || std::memcmp(sp.wal.bytes.data(), committed_.data(), n) != 0)
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
    if (it == commits_by_term_.end() || it->term != term)
        it = commits_by_term_.insert(it, CommitByTerm{term, commit, 0});
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
        fail("invariant 2 (commit beyond WAL)",
             "commit " + format_lsn(commit) + " outside proposer WAL");
        return;
    }
    const std::size_t len = commit - kTimelineStart;
    // Invariant 6 / quorum: the committed WAL is durable on a real majority.
    std::vector<int> holding;
    // (A recreated member starts its WAL where it rejoined.)
    for (std::size_t k = 0; k < acceptors_.size(); ++k) {
        const SimAcceptor& a = acceptors_[k];
        if (a.storage.start &&
            a.storage.durable_matches(sp.wal.bytes, kTimelineStart, std::max(a.storage.start, kTimelineStart), commit))
            holding.push_back(static_cast<int>(k));
    }
    const std::size_t holders = holding.size();
    // With --membership: a quorum of the committing proposer's configuration
    // (a majority of both sets while it is joint).
    if (!durable_majority(holding, commit_config_, true))
        fail("invariant 2/6 (commit without a quorum)",
             "proposer " + std::to_string(p) + " term " + std::to_string(sp.proposer->term()) +
                 " confirmed commit " + format_lsn(commit) + " but only " +
                 std::to_string(holders) + " of " + std::to_string(acceptors_.size()) +
                 " acceptors durably hold that WAL");
    const std::size_t overlap = std::min(len, committed_.size());
    if (overlap > 0 && std::memcmp(sp.wal.bytes.data(), committed_.data(), overlap) != 0) {
        std::size_t i = 0;
        while (i < overlap && sp.wal.bytes[i] == committed_[i]) ++i;
        fail("invariant 2 (committed byte changed)",
             "proposer " + std::to_string(p) + " committed " + format_lsn(commit) +
                 " with WAL differing from earlier committed WAL at " +
                 format_lsn(kTimelineStart + i));
    }
    record_commit(sp.proposer->term(), commit);
    if (len > committed_.size()) {
        stats_->committed_bytes += len - committed_.size();
        committed_.assign(sp.wal.bytes.begin(), sp.wal.bytes.begin() + len);
    }
    if (verbose_) note("P" + std::to_string(p) + " commit_lsn -> " + format_lsn(commit));
}

void World::refresh_sync_wal(int p) {
    // Acceptors that accepted the sync proposer's term hold its history up to
    // their flush LSN: they agree byte for byte, and together give its WAL.
    // An acceptor that has since accepted a later term still holds the same
    // bytes below the point where its history leaves the sync's (the highest
    // common point): the sync may have counted its acknowledgement from
    // before it moved on.
    SimProposer& sp = proposers_[p];
    const Term t = sp.elected_term;
    if (t == 0) return;
    const TermHistory sync_history = sp.proposer->status().term_history;
    for (std::size_t k = 0; k < acceptors_.size(); ++k) {
        const SimAcceptor& a = acceptors_[k];
        if (!a.up || !a.acceptor || !a.storage.start) continue;
        const TermHistory& h = a.acceptor->state().term_history;
        if (h.empty() || h.back().term < t) continue;
        Lsn flush = a.storage.flushed_end;
        if (h.back().term != t) {
            const HighestCommonPoint common = highest_common_point(sync_history, h, flush);
            if (!common.found) continue;
            flush = std::min(flush, common.lsn);
        }
        const Lsn from = std::max(a.storage.start, kTimelineStart);
        const Lsn known = sp.flush_end();
        const Lsn common = std::min(flush, known);
        if (common > from && !a.storage.durable_matches(sp.wal.bytes, kTimelineStart, from, common))
            fail("invariant 6 (acceptor WAL diverges from the elected proposer's)",
                 "A" + std::to_string(k) + " holds WAL up to " + format_lsn(flush) +
                     " in the term " + std::to_string(t) + " of sync proposer " +
                     std::to_string(p) + " that differs from another acceptor of that term");
        if (flush > known && a.storage.start <= kTimelineStart)
            sp.wal.bytes.insert(sp.wal.bytes.end(),
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
                                   sp.wal.bytes, kTimelineStart, std::max(a.storage.start, kTimelineStart), st.sync_lsn))
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

void World::check_invariants() {
    if (sync_p_ >= 0 && proposers_[sync_p_].running()) refresh_sync_wal(sync_p_);
    if (membership_) check_membership();
    if (!committed_.empty()) {
        const Lsn end = kTimelineStart + committed_.size();
        std::vector<int> holding;
        for (std::size_t k = 0; k < acceptors_.size(); ++k) {
            const SimAcceptor& a = acceptors_[k];
            if (a.storage.start && a.storage.durable_matches(
                                       committed_, kTimelineStart, std::max(a.storage.start, kTimelineStart), end))
                holding.push_back(static_cast<int>(k));
        }
        const std::size_t holders = holding.size();
        // With --membership: a majority of the members of the newest
        // configuration (its old set while it is joint: the new set catches
        // up before the joint configuration is left).
        if (!durable_majority(holding, in_force_, false))
            fail("invariant 2 (committed WAL no longer durable on a majority)",
                 "only " + std::to_string(holders) + " of " + std::to_string(acceptors_.size()) +
                     " acceptors hold the committed WAL up to " + format_lsn(end));
    }
    for (std::size_t k = 0; k < acceptors_.size(); ++k) {
        SimAcceptor& sa = acceptors_[k];
        const Lsn durable_commit = sa.storage.durable.commit_lsn;
        if (durable_commit < sa.seen_durable_commit)
            fail("invariant 3 (commit_lsn decreased)",
                 "A" + std::to_string(k) + " durable commit_lsn went from " +
                     format_lsn(sa.seen_durable_commit) + " to " + format_lsn(durable_commit));
        sa.seen_durable_commit = durable_commit;
        if (!sa.up) continue;
        const Lsn commit = sa.acceptor->commit_lsn();
        if (commit < sa.seen_commit)
            fail("invariant 3 (commit_lsn decreased)",
                 "A" + std::to_string(k) + " commit_lsn went from " + format_lsn(sa.seen_commit) +
                     " to " + format_lsn(commit));
        sa.seen_commit = commit;
        if (commit > sa.acceptor->flush_lsn())
            fail("invariant 3 (commit_lsn beyond flush)", "A" + std::to_string(k));
        // What a consumer of this acceptor may read: [start, commit_lsn). It must be committed WAL.
        if (commit > kTimelineStart) {
            if (commit - kTimelineStart > committed_.size())
                fail("invariant 3 (acceptor serves uncommitted WAL)",
                     "A" + std::to_string(k) + " commit_lsn " + format_lsn(commit) +
                         " beyond the committed end " +
                         format_lsn(kTimelineStart + committed_.size()));
            else if (!sa.storage.durable_matches(committed_, kTimelineStart, std::max(sa.storage.start, kTimelineStart), commit))
                fail("invariant 2/3 (acceptor would serve WAL that differs from the committed WAL)",
                     "A" + std::to_string(k) + " below its commit_lsn " + format_lsn(commit));
        }
    }
}

}  // namespace wpsim
