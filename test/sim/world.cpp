// The model and the scheduler of wpsim (see world.h).
#include "world.h"

#include <algorithm>
#include <cstring>

namespace wpsim {

AcceptorConfig World::acceptor_config(int k) const {
    AcceptorConfig cfg;
    cfg.node_id = static_cast<NodeId>(k + 1);
    cfg.unsafe_test_only_trust_elected_start = mode_ == BreakMode::kLateElected;
    return cfg;
}

void World::setup() {
    const int n_acceptors = membership_ ? (rng_.chance(50) ? 5 : 6) : rng_.chance(70) ? 3 : 5;
    const int n_proposers = rng_.chance(30) ? 1 : 2;
    fault_percent_ = 2 + static_cast<unsigned>(rng_.below(9));
    nemesis_ = n_proposers == 2 && rng_.chance(70);
    targeted_elected_drop_ = static_cast<unsigned>(rng_.below(70));
    targeted_append_drop_ = static_cast<unsigned>(rng_.below(4));
    zombie_percent_ = rng_.chance(60) ? static_cast<unsigned>(rng_.below(80)) : 0;
    acceptors_.resize(n_acceptors);
    for (int k = 0; k < n_acceptors; ++k)
        acceptors_[k].acceptor = std::make_unique<Acceptor>(
            acceptor_config(k), &acceptors_[k].storage, AcceptorDurableState{});
    // Proposers hold pointers into their SimProposer: never reallocate.
    proposers_.reserve(kMaxProposers);
    proposers_.resize(n_proposers);
    link_up_.assign(n_proposers, std::vector<bool>(n_acceptors, true));
    note("schedule: " + std::to_string(n_proposers) + " proposer(s), " +
         std::to_string(n_acceptors) + " acceptors, fault rate " + std::to_string(fault_percent_) +
         "%");
    if (n_proposers == 2 && rng_.chance(50)) {
        for (int k = 0; k < n_acceptors; ++k) {
            const std::size_t side = rng_.below(2);
            link_up_[0][k] = side == 0;
            link_up_[1][k] = side == 1;
        }
    }
    if (membership_) membership_setup();
    for (int p = 0; p < n_proposers; ++p) {
        proposers_[p].index = p;
        proposers_[p].conn.assign(n_acceptors, -1);
        // Some initial local WAL.
        const std::size_t initial = rng_.below(200);
        for (std::size_t i = 0; i < initial; ++i) generate_wal(p);
        restart_proposer(p);
    }
}

void World::generate_wal(int p) {
    SimProposer& sp = proposers_[p];
    const std::size_t n = 1 + rng_.below(rng_.chance(10) ? 400 : 60);
    for (std::size_t i = 0; i < n; ++i) {
        const Lsn lsn = sp.flush_end();
        // Content depends on which primary wrote it, so divergence is visible.
        std::uint64_t h = (lsn * 0x9E3779B97F4A7C15ull) ^
                          (static_cast<std::uint64_t>(p + 1) * 0xC2B2AE3D27D4EB4Full);
        h ^= h >> 29;
        sp.wal.bytes.push_back(static_cast<std::uint8_t>(h));
    }
    if (sp.proposer) apply(p, sp.proposer->on_wal_available(sp.flush_end(), now_));
}

void World::restart_proposer(int p) {
    SimProposer& sp = proposers_[p];
    for (std::size_t k = 0; k < sp.conn.size(); ++k)
        if (sp.conn[k] >= 0) close_connection(sp.conn[k], false, "proposer restart");
    for (auto it = pending_connects_.begin(); it != pending_connects_.end();)
        it = (it->first == p) ? pending_connects_.erase(it) : it + 1;
    ++sp.incarnation;
    ProposerConfig cfg;
    cfg.acceptor_count = acceptors_.size();
    // A sync proposer has no PostgreSQL identity: system id 0 (the core sets
    // kGreetingFlagSync) and no WalReader.
    cfg.greeting.system_id = sp.sync ? 0 : kSystemId;
    cfg.greeting.pg_version = 150004;
    cfg.greeting.wal_segment_size = sp.sync ? 0 : 16 * 1024 * 1024;
    cfg.greeting.pg_timeline = sp.sync ? 0 : sp.pg_timeline;
    cfg.greeting.proposer_id[0] = static_cast<std::uint8_t>(p + 1);
    cfg.sync = sp.sync;
    cfg.inherited_wal_end = sp.inherited_wal_end;
    sp.inheriting = !sp.sync && sp.persisted_history.empty() && sp.inherited_wal_end != kInvalidLsn;
    if (mode_ == BreakMode::kInherit && sp.inherited_wal_end != kInvalidLsn)
        cfg.unsafe_test_only_inherit_unchecked = true;
    cfg.greeting.proposer_id[1] = static_cast<std::uint8_t>(sp.incarnation);
    cfg.own_term_history = sp.persisted_history;
    cfg.timeline_start_lsn = kTimelineStart;
    cfg.reconnect_interval_ms = 30;
    cfg.response_timeout_ms = 400;
    cfg.election_timeout_ms = 150 + rng_.below(300);
    cfg.backoff_min_ms = 10;
    cfg.backoff_max_ms = 200;
    cfg.heartbeat_interval_ms = 60;
    cfg.max_append_bytes = 16 + rng_.below(64);
    cfg.max_inflight_bytes = 256;
    cfg.commit_notice_delay_ms = rng_.below(3) * 5;  // 0, 5 or 10: notices ride on WAL
    cfg.random_seed =
        seed_ * 31 + static_cast<std::uint64_t>(p) * 7 + static_cast<std::uint64_t>(sp.incarnation);
    if (mode_ == BreakMode::kQuorum) cfg.unsafe_test_only_quorum_override = acceptors_.size() / 2;
    if (mode_ == BreakMode::kOwnTerm) cfg.unsafe_test_only_commit_old_terms = true;
    if (mode_ == BreakMode::kContent) cfg.unsafe_test_only_skip_content_check = true;
    if (mode_ == BreakMode::kNoTrim) cfg.unsafe_test_only_keep_full_history = true;
    if (mode_ == BreakMode::kJoint) cfg.unsafe_test_only_skip_joint = true;
    cfg.configuration = sp.persisted_config;
    sp.proposer = std::make_unique<Proposer>(cfg, sp.sync ? nullptr : &sp.wal);
    if (sp.sync) {
        sp.wal.bytes.clear();  // rebuilt from the acceptors of its term
        sp.elected_term = 0;
    }
    note("proposer " + std::to_string(p) + (sp.sync ? " (SYNC)" : "") +
         " (re)starts, incarnation " + std::to_string(sp.incarnation) + ", PG timeline " +
         std::to_string(sp.pg_timeline) +
         (sp.inheriting ? ", inherited WAL up to " + format_lsn(sp.inherited_wal_end)
                        : std::string()) +
         ", local WAL ends at " + format_lsn(sp.flush_end()) + ", own history " +
         format_history(sp.persisted_history));
    apply(p, sp.proposer->start(now_, sp.sync ? kInvalidLsn : sp.flush_end()));
}

void World::apply(int p, ProposerOutput out) {
    SimProposer& sp = proposers_[p];
    for (const LogLine& l : out.log)
        if (verbose_ || l.level >= LogLevel::kWarning)
            note("P" + std::to_string(p) + " log: " + l.text);
    if (out.persist_own_term_history) sp.persisted_history = *out.persist_own_term_history;
    // A commit in this output was counted before any configuration change in
    // it (the core counts, then moves the change on).
    commit_config_ = sp.persisted_config;
    if (out.persist_configuration) on_persist_configuration(p, *out.persist_configuration);
    for (std::size_t& k : out.disconnect) k = static_cast<std::size_t>(acceptor_of(p, k));
    for (std::size_t& k : out.connect) k = static_cast<std::size_t>(acceptor_of(p, k));
    for (std::size_t k : out.disconnect)
        if (sp.conn[k] >= 0) close_connection(sp.conn[k], false, "proposer closed it");
    for (auto it = pending_connects_.begin(); it != pending_connects_.end();) {
        bool dropped = false;
        for (std::size_t k : out.disconnect)
            if (it->first == p && it->second == static_cast<int>(k)) dropped = true;
        it = dropped ? pending_connects_.erase(it) : it + 1;
    }
    for (OutgoingMessage& m : out.messages) {
        const int c = sp.conn[acceptor_of(p, m.acceptor)];
        if (c < 0 || !conns_[c].open || !conns_[c].established) {
            fail("driver contract", "proposer sent to acceptor " + std::to_string(m.acceptor) +
                                        " without a connection");
            continue;
        }
        conns_[c].to_acceptor.push_back(std::move(m.payload));
    }
    for (std::size_t k : out.connect) {
        if (sp.conn[k] >= 0) close_connection(sp.conn[k], false, "reconnect");
        pending_connects_.push_back({p, static_cast<int>(k)});
    }
    if (out.state_changed) {
        note("P" + std::to_string(p) + " state -> " + to_string(*out.state_changed) + " term " +
             std::to_string(sp.proposer->term()));
        if (*out.state_changed == ProposerState::kElected) on_elected(p);
        if (*out.state_changed == ProposerState::kSuperseded) {
            ++stats_->superseded;
            const ProposerStatus st = sp.proposer->status();
            if (st.superseded_reason.rfind("fenced", 0) == 0) ++stats_->fenced;
            if (st.superseded_reason.rfind("promoted before catching up", 0) == 0)
                ++stats_->refused_lagging;
            note("P" + std::to_string(p) + " superseded by term " +
                 std::to_string(st.superseded_by_term) + " at " + format_lsn(st.superseded_at_lsn) +
                 ": " + st.superseded_reason);
        }
    }
    if (out.commit_lsn) on_commit(p, *out.commit_lsn);
}

void World::open_connection(int p, int k) {
    SimProposer& sp = proposers_[p];
    const bool ok = acceptors_[k].up && link_up_[p][k];
    if (!ok) {
        note("P" + std::to_string(p) + " -> A" + std::to_string(k) + " connect fails");
        if (auto slot = slot_of(p, k)) apply(p, sp.proposer->on_disconnected(*slot, now_, "connection refused"));
        return;
    }
    const std::optional<std::size_t> slot = slot_of(p, k);
    if (!slot) return;
    Conn c;
    c.proposer = p;
    c.acceptor = k;
    c.established = true;
    AcceptorSessionConfig session_config;
    session_config.unsafe_test_only_any_streamer = mode_ == BreakMode::kOneStreamer;
    c.session = std::make_unique<AcceptorSession>(conns_.size() + 1, session_config,
                                                  *acceptors_[k].acceptor, acceptors_[k].slot);
    conns_.push_back(std::move(c));
    sp.conn[k] = static_cast<int>(conns_.size() - 1);
    if (verbose_)
        note("P" + std::to_string(p) + " -> A" + std::to_string(k) + " connected (conn " +
             std::to_string(conns_.size() - 1) + ")");
    apply(p, sp.proposer->on_connected(*slot, now_));
}

void World::close_connection(int c, bool notify_proposer, const std::string& why) {
    Conn& conn = conns_[c];
    if (!conn.open) return;
    conn.open = false;
    conn.to_proposer.clear();
    // TCP may still deliver what was sent before the proposer gave up, unless
    // the acceptor's process is gone.
    const bool acceptor_alive = acceptors_[conn.acceptor].up && acceptors_[conn.acceptor].acceptor;
    if (acceptor_alive && !conn.to_acceptor.empty() && zombie_percent_ &&
        rng_.chance(zombie_percent_)) {
        conn.zombie = true;
    } else {
        conn.to_acceptor.clear();
        end_session(c);
    }
    SimProposer& sp = proposers_[conn.proposer];
    if (sp.conn[conn.acceptor] == c) sp.conn[conn.acceptor] = -1;
    if (verbose_ || notify_proposer)
        note("conn " + std::to_string(c) + " P" + std::to_string(conn.proposer) + "-A" +
             std::to_string(conn.acceptor) + " closed: " + why +
             (conn.zombie
                  ? " (" + std::to_string(conn.to_acceptor.size()) + " messages still in flight)"
                  : ""));
    if (notify_proposer)
        if (auto slot = slot_of(conn.proposer, conn.acceptor))
            apply(conn.proposer, sp.proposer->on_disconnected(*slot, now_, why));
}

void World::end_session(int c) {
    Conn& conn = conns_[c];
    if (!conn.session) return;
    conn.session->close();
    conn.session.reset();
}

void World::send_append_response(int c, const AppendResponse& r) {
    Conn& conn = conns_[c];
    if (!conn.open) return;  // the proposer is gone from this connection
    SimAcceptor& sa = acceptors_[conn.acceptor];
    sa.acked_flush = std::max(sa.acked_flush, r.flush_lsn);
    if (verbose_)
        note("A" + std::to_string(conn.acceptor) + "->P" + std::to_string(conn.proposer) + " " +
             describe(r));
    conn.to_proposer.push_back(encode(r));
}

void World::deliver_to_acceptor(int c) {
    Conn& conn = conns_[c];
    std::vector<std::uint8_t> bytes = std::move(conn.to_acceptor.front());
    conn.to_acceptor.pop_front();
    ++stats_->messages;
    const int k = conn.acceptor;
    SimAcceptor& sa = acceptors_[k];
    Acceptor& acc = *sa.acceptor;
    Result<Message> decoded = decode(bytes);
    if (!decoded.ok()) {
        fail("codec", "acceptor could not decode a proposer message: " + decoded.message());
        return;
    }
    if (!conn.session) {
        fail("driver contract", "message delivered on connection " + std::to_string(c) +
                                    " that has no acceptor session");
        return;
    }
    const Message& msg = decoded.value();
    const std::string who = "A" + std::to_string(k) + "<-P" + std::to_string(conn.proposer) +
                            (conn.zombie ? " (late, conn " + std::to_string(c) + ") " : " ");
    if (conn.zombie) ++stats_->late_messages;
    if (verbose_ || conn.zombie) note(who + describe(msg));
    // The connection's rules (greeting first, one streamer, batches) are the
    // core's AcceptorSession, as in the daemon.
    AcceptorSession& session = *conn.session;
    const SessionStep st = session.handle(msg);
    for (const AppendResponse& r : st.batch) send_append_response(c, r);
    if (st.error) {
        note(who + describe(msg) + " -> error (" + session_error_kind_name(st.error->kind) +
             "): " + st.error->message);
        if (conn.zombie) {
            conn.zombie = false;
            conn.to_acceptor.clear();
            end_session(c);
        } else {
            close_connection(c, true, "acceptor error: " + st.error->message);
        }
        return;
    }
    if (st.appended) {
        if (session.pending_appends() == 1) sa.pending_flush.push_back(c);
        // One streamer per timeline: WAL is taken only from the connection
        // whose ProposerElected the acceptor accepted last.
        if (sa.stream_owner != static_cast<std::uint64_t>(c) + 1) {
            const auto& a = std::get<AppendRequest>(msg);
            fail("one streamer per timeline (an acceptor took WAL from two connections)",
                 "A" + std::to_string(k) + " wrote WAL [" + format_lsn(a.begin_lsn) + ", " +
                     format_lsn(a.begin_lsn + a.wal.size()) + ") of term " +
                     std::to_string(a.term) + " from conn " + std::to_string(c) + " (P" +
                     std::to_string(conn.proposer) + ") while " +
                     (sa.stream_owner
                          ? "conn " + std::to_string(sa.stream_owner - 1) + " (P" +
                                std::to_string(conns_[sa.stream_owner - 1].proposer) + ")"
                          : std::string("no connection")) +
                     " streams (its ProposerElected was accepted last)");
        }
    }
    if (st.reply) {
        const Message& r = *st.reply;
        if (const auto* g = std::get_if<AcceptorGreeting>(&r)) {
            sa.acked_flush = std::max(sa.acked_flush, g->flush_lsn);
        } else if (const auto* v = std::get_if<VoteResponse>(&r)) {
            if (v->vote_granted) sa.granted_term = std::max(sa.granted_term, v->term);
            sa.acked_flush = std::max(sa.acked_flush, v->flush_lsn);
        }
        if (const auto* e = std::get_if<ProposerElected>(&msg);
            e && std::get<AppendResponse>(r).term == e->term) {
            sa.stream_owner = static_cast<std::uint64_t>(c) + 1;
            sa.acked_flush = acc.flush_lsn();  // truncation may legitimately lower it
            // Log matching: what the acceptor keeps equals the elected primary's WAL.
            const SimProposer& sp = proposers_[conn.proposer];
            const Lsn from = std::max(sa.storage.start, kTimelineStart);
            // (A sync proposer's WAL is checked against its acceptors in refresh_sync_wal.)
            if (!sp.sync && sp.running() && sa.storage.start &&
                !sa.storage.durable_matches(sp.wal.bytes, kTimelineStart, from, acc.flush_lsn()) &&
                sp.proposer->state() == ProposerState::kElected && sp.proposer->term() == e->term)
                fail("invariant 6 (acceptor WAL diverges from the elected proposer's)",
                     "A" + std::to_string(k) + " kept WAL up to " + format_lsn(acc.flush_lsn()) +
                         " that differs from the WAL of proposer " + std::to_string(conn.proposer) +
                         " elected in term " + std::to_string(e->term));
            // Failover: a fenced primary is never accepted by a quorum once a
            // completed sync put the fence on one.
            if (!sp.sync && sp.pg_timeline < fence_) {
                auto& who_accepted = fenced_accepts_[{conn.proposer, sp.incarnation, e->term}];
                if (std::find(who_accepted.begin(), who_accepted.end(), k) == who_accepted.end())
                    who_accepted.push_back(k);
                if (who_accepted.size() >= majority())
                    fail("failover: fenced primary elected",
                         "proposer " + std::to_string(conn.proposer) + " on PG timeline " +
                             std::to_string(sp.pg_timeline) + " (fence " + std::to_string(fence_) +
                             ") accepted in term " + std::to_string(e->term) + " by " +
                             std::to_string(who_accepted.size()) + " acceptors");
            }
        }
        if (!conn.zombie) {  // a zombie's replies go nowhere
            if (verbose_)
                note("A" + std::to_string(k) + "->P" + std::to_string(conn.proposer) + " " +
                     describe(r));
            conn.to_proposer.push_back(encode(r));
        }
    }
    // A late connection ends at the acceptor once it has read everything.
    if (conn.zombie && conn.to_acceptor.empty()) {
        conn.zombie = false;
        end_session(c);
    }
}

void World::acceptor_flush(int k) {
    // Group commit: every open batch of this acceptor's sessions ends now
    // (the first flush makes all written WAL durable).
    SimAcceptor& sa = acceptors_[k];
    std::vector<int> pending;
    pending.swap(sa.pending_flush);
    bool flushed = false;
    for (int c : pending) {
        if (!conns_[c].session || conns_[c].session->pending_appends() == 0) continue;
        const SessionStep st = conns_[c].session->finish_batch();
        flushed = true;
        if (st.error) {
            fail("storage", st.error->message);
            return;
        }
        for (const AppendResponse& r : st.batch) send_append_response(c, r);
    }
    if (!flushed) {
        // WAL written by connections that ended before their batch did.
        Status s = sa.acceptor->flush();
        if (!s.ok()) {
            fail("storage", s.message());
            return;
        }
    }
    if (rng_.chance(20)) (void)sa.acceptor->persist_horizons();
}

void World::crash_acceptor(int k, bool power_loss) {
    SimAcceptor& sa = acceptors_[k];
    ++stats_->crashes;
    if (power_loss) ++stats_->power_losses;
    note("A" + std::to_string(k) +
         (power_loss ? " LOSES POWER" : " CRASHES (process; page cache kept)") + " (write end " +
         format_lsn(sa.storage.written_end()) + ", synced " + format_lsn(sa.storage.synced_end) +
         ")");
    sa.up = false;
    sa.pending_flush.clear();
    for (std::size_t c = 0; c < conns_.size(); ++c) {
        if (conns_[c].acceptor != k) continue;
        conns_[c].zombie = false;
        conns_[c].to_acceptor.clear();
        end_session(static_cast<int>(c));  // the process is gone: so are its sessions
        if (conns_[c].open) close_connection(static_cast<int>(c), true, "acceptor crashed");
    }
    sa.acceptor.reset();
    sa.slot = StreamingSlot{};
    sa.stream_owner = 0;
    if (power_loss) sa.storage.power_loss();
}

void World::restart_acceptor(int k) {
    SimAcceptor& sa = acceptors_[k];
    sa.storage.recover(/*sync_first=*/mode_ != BreakMode::kUnsyncedRestart);
    sa.acceptor = std::make_unique<Acceptor>(acceptor_config(k), &sa.storage, sa.storage.durable);
    sa.up = true;
    sa.seen_commit = sa.acceptor->commit_lsn();
    note("A" + std::to_string(k) + " restarts: term " + std::to_string(sa.acceptor->term()) +
         " flush " + format_lsn(sa.acceptor->flush_lsn()) + " history " +
         format_history(sa.acceptor->state().term_history));
    if (sa.acceptor->failed())
        fail("invariant 4 (acceptor cannot serve after a crash)",
             "A" + std::to_string(k) + ": " + sa.acceptor->failure().message());
    if (sa.acceptor->flush_lsn() < sa.acked_flush)
        fail("invariant 4 (acknowledged flush lost in a crash)",
             "A" + std::to_string(k) + " acknowledged " + format_lsn(sa.acked_flush) +
                 " but restarted at " + format_lsn(sa.acceptor->flush_lsn()));
    if (sa.acceptor->term() < sa.granted_term)
        fail("invariant 4 (granted vote lost in a crash)",
             "A" + std::to_string(k) + " granted term " + std::to_string(sa.granted_term) +
                 " but restarted with term " + std::to_string(sa.acceptor->term()));
}

void World::peer_recovery_step() {
    // Go on with a recovery in progress.
    for (std::size_t k = 0; k < acceptors_.size(); ++k) {
        SimAcceptor& sa = acceptors_[k];
        if (sa.recovering_from < 0) continue;
        SimAcceptor& donor = acceptors_[sa.recovering_from];
        const std::string who = "A" + std::to_string(k) + " recovering from A" +
                                std::to_string(sa.recovering_from);
        const Lsn at = sa.up ? sa.acceptor->write_lsn() : kInvalidLsn;
        if (!sa.up || !sa.acceptor->peer_recovery_active() || sa.slot.holder() != 0 ||
            !donor.up || at >= sa.recovery_target || donor.storage.flush_lsn() < sa.recovery_target ||
            donor.storage.start > at) {
            if (sa.up && sa.acceptor->peer_recovery_active() && !sa.acceptor->flush().ok())
                fail("peer recovery", who + ": flush failed");
            note(who + ": ends at " + format_lsn(at));
            sa.recovering_from = -1;
            return;
        }
        const Lsn end = std::min<Lsn>(sa.recovery_target, at + 1 + rng_.below(48 * 1024));
        std::vector<std::uint8_t> chunk;
        if (!donor.storage.read_wal(at, end, chunk).ok() || chunk.size() != end - at) {
            note(who + ": cannot read the donor's WAL");
            sa.recovering_from = -1;
            return;
        }
        Status s = sa.acceptor->append_peer_wal(at, chunk.data(), chunk.size());
        if (s.ok() && rng_.chance(50)) s = sa.acceptor->flush();
        if (!s.ok()) fail("peer recovery", who + ": " + s.message());
        stats_->recovered_bytes += chunk.size();
        if (verbose_) note(who + ": copied [" + format_lsn(at) + ", " + format_lsn(end) + ")");
        return;
    }
    // Or begin one: an acceptor no proposer streams to, from a random donor.
    const int k = static_cast<int>(rng_.below(acceptors_.size()));
    const int d = static_cast<int>(rng_.below(acceptors_.size()));
    SimAcceptor& sa = acceptors_[k];
    SimAcceptor& donor = acceptors_[d];
    if (k == d || !sa.up || !donor.up || sa.slot.holder() != 0 || sa.acceptor->failed() ||
        donor.acceptor->failed() || !donor.storage.start)
        return;
    // What the donor's snapshot shows: its durable control state and WAL.
    const AcceptorDurableState& ds = donor.storage.durable;
    Lsn target = std::min(ds.commit_lsn, donor.storage.flush_lsn());
    if (mode_ == BreakMode::kRecovery) target = donor.storage.flush_lsn();
    if (target <= sa.acceptor->flush_lsn()) return;
    auto plan = sa.acceptor->begin_peer_recovery(ds.term_history, target,
                                                 std::max(donor.storage.start, kTimelineStart));
    const std::string who = "A" + std::to_string(k) + " recovering from A" + std::to_string(d);
    if (!plan) {
        // Two committed WALs that differ: impossible unless a rule is broken.
        fail("peer recovery (committed WAL differs between acceptors)", who + ": " + plan.message());
        return;
    }
    sa.acked_flush = std::min(sa.acked_flush, sa.acceptor->flush_lsn());  // a tail may be cut
    if (plan->needs_bootstrap || plan->fetch_from >= plan->target) return;
    ++stats_->recoveries;
    sa.recovering_from = d;
    sa.recovery_target = plan->target;
    note(who + ": [" + format_lsn(plan->fetch_from) + ", " + format_lsn(plan->target) +
         ") with history " + format_history(ds.term_history));
}

void World::recreate_acceptor(int k) {
    // DELETE of the timeline and a new one created by the next greeting: the
    // WAL and the control file are gone; the tombstone keeps the term and
    // the failover fence.
    SimAcceptor& sa = acceptors_[k];
    const Term tombstone_term = sa.storage.durable.term;
    const std::uint32_t tombstone_fence = sa.storage.durable.min_pg_timeline;
    const Configuration tombstone_config = sa.storage.durable.configuration;
    crash_acceptor(k, /*power_loss=*/false);
    ++stats_->recreated;
    recreated_one_ = true;
    sa.storage = MemoryAcceptorStorage{};
    sa.storage.durable.term = mode_ == BreakMode::kDelete ? 0 : tombstone_term;
    sa.storage.durable.min_pg_timeline = tombstone_fence;
    sa.storage.durable.configuration = tombstone_config;
    sa.acked_flush = kInvalidLsn;
    sa.seen_commit = sa.seen_durable_commit = kInvalidLsn;
    sa.recreated = true;
    sa.acceptor = std::make_unique<Acceptor>(acceptor_config(k), &sa.storage, sa.storage.durable);
    sa.up = true;
    note("A" + std::to_string(k) + " timeline DELETED and recreated empty, term " +
         std::to_string(sa.acceptor->term()));
}

void World::clone_proposer(int from, int to) {
    // The data directory of `to` is replaced by a snapshot of `from`'s (a
    // restored backup started as a primary): the same own terms and a prefix
    // of the same WAL; from here on it writes WAL of its own.
    SimProposer& src = proposers_[from];
    SimProposer& dst = proposers_[to];
    const std::size_t keep = static_cast<std::size_t>(rng_.below(src.wal.bytes.size() + 1));
    dst.wal.bytes.assign(src.wal.bytes.begin(), src.wal.bytes.begin() + static_cast<long>(keep));
    dst.persisted_history = src.persisted_history;
    ++stats_->clones;
    note("P" + std::to_string(to) + " data directory RESTORED from a snapshot of P" +
         std::to_string(from) + " at " + format_lsn(kTimelineStart + keep));
    restart_proposer(to);
}

void World::stop_proposer(int p, const std::string& why) {
    SimProposer& sp = proposers_[p];
    if (!sp.running()) return;
    for (std::size_t k = 0; k < sp.conn.size(); ++k)
        if (sp.conn[k] >= 0) close_connection(sp.conn[k], false, why);
    for (auto it = pending_connects_.begin(); it != pending_connects_.end();)
        it = (it->first == p) ? pending_connects_.erase(it) : it + 1;
    sp.proposer.reset();
    note("P" + std::to_string(p) + (sp.sync ? " (SYNC)" : "") + " STOPS: " + why);
}

int World::add_proposer() {
    const int p = static_cast<int>(proposers_.size());
    proposers_.emplace_back();
    SimProposer& sp = proposers_.back();
    sp.index = p;
    sp.conn.assign(acceptors_.size(), -1);
    link_up_.push_back(std::vector<bool>(acceptors_.size(), true));
    return p;
}

void World::begin_failover() {
    ++failovers_;
    ++stats_->failovers;
    note("FAILOVER " + std::to_string(failovers_) + " begins");
    // The old primaries: mostly stopped (crashed, or shut down by the
    // operator); one still running keeps trying (it was only cut off).
    for (std::size_t p = 0; p < proposers_.size(); ++p)
        if (proposers_[p].running() && !proposers_[p].sync && rng_.chance(60))
            stop_proposer(static_cast<int>(p), "failover: the old primary is down");
    if (rng_.chance(75)) {
        start_sync();
    } else {
        note("failover without a sync");
        promote_at_ = step_ + 1 + rng_.below(20);
    }
}

void World::start_sync() {
    const int p = add_proposer();
    proposers_[p].sync = true;
    ++stats_->syncs;
    sync_p_ = p;
    // The operator gives the sync up after a while (crashes, partitions).
    sync_deadline_ = step_ + 100 + rng_.below(400);
    restart_proposer(p);
}

void World::promote_standby() {
    // The standby replayed what the safekeepers serve: WAL below their
    // commit_lsn. Caught up: the highest such LSN; lagging: lower.
    Lsn known = kTimelineStart;
    for (const SimAcceptor& a : acceptors_)
        known = std::max(
            known, a.up && a.acceptor ? a.acceptor->commit_lsn() : a.storage.durable.commit_lsn);
    known = std::min<Lsn>(known, kTimelineStart + committed_.size());
    Lsn switch_point = known;
    if (known > kTimelineStart && rng_.chance(40)) {
        const Lsn range = known - kTimelineStart;
        const Lsn lag =
            rng_.chance(70) ? 1 + rng_.below(std::min<Lsn>(range, 200)) : 1 + rng_.below(range);
        switch_point = known - lag;
        ++stats_->lagging_promotions;
    }
    const int p = add_proposer();
    SimProposer& sp = proposers_[p];
    sp.wal.bytes.assign(committed_.begin(),
                  committed_.begin() + static_cast<long>(switch_point - kTimelineStart));
    sp.pg_timeline = ++max_timeline_;
    sp.inherited_wal_end = switch_point;
    ++stats_->promotions;
    note("PROMOTION: P" + std::to_string(p) + " is a standby promoted to PG timeline " +
         std::to_string(sp.pg_timeline) + " at " + format_lsn(switch_point) +
         (switch_point < known
              ? " (lagging; the safekeepers committed up to " + format_lsn(known) + ")"
              : " (caught up)") +
         (fence_ ? ", fence " + std::to_string(fence_) : std::string()));
    // Its first WAL of its own on the new timeline.
    const std::size_t writes = 1 + rng_.below(4);
    for (std::size_t i = 0; i < writes; ++i) generate_wal(p);
    restart_proposer(p);
}

void World::failover_step(bool faults) {
    if (sync_p_ >= 0) {
        SimProposer& sp = proposers_[sync_p_];
        if (sp.running() && sp.proposer->status().sync_done) {
            on_sync_done(sync_p_);
            ++stats_->syncs_done;
            stop_proposer(sync_p_, "sync done");
            sync_p_ = -1;
            promote_at_ = step_ + 1 + rng_.below(20);
        } else if (!sp.running() || step_ >= sync_deadline_ ||
                   sp.proposer->state() == ProposerState::kSuperseded) {
            ++stats_->syncs_failed;
            stop_proposer(sync_p_, "the operator gives the sync up");
            sync_p_ = -1;
            if (rng_.chance(50))
                promote_at_ = step_ + 1 + rng_.below(20);  // promoted without a sync
            else
                note("failover abandoned");
        }
    }
    if (promote_at_ && step_ >= promote_at_) {
        promote_at_ = 0;
        promote_standby();
    }
    if (!faults) return;
    // Old primaries come back: their own WAL and terms, their old PG timeline.
    for (std::size_t p = 0; p < proposers_.size(); ++p)
        if (!proposers_[p].running() && !proposers_[p].sync && rng_.chance(2)) {
            ++stats_->comebacks;
            note("P" + std::to_string(p) + " COMES BACK on PG timeline " +
                 std::to_string(proposers_[p].pg_timeline));
            restart_proposer(static_cast<int>(p));
        }
    if (sync_p_ < 0 && !promote_at_ && failovers_ < kMaxFailovers &&
        proposers_.size() + 2 <= kMaxProposers && rng_.below(1000) < 8)
        begin_failover();
}

void World::step() {
    ++step_;
    now_ += 1 + rng_.below(8);
    const bool faults = step_ + 150 < total_steps_;  // a quiet tail lets the system converge
    if (membership_ && faults) membership_step();
    if (rng_.chance(8)) peer_recovery_step();
    const unsigned roll = static_cast<unsigned>(rng_.below(100));
    // Collect deliverable queues.
    std::vector<std::pair<int, bool>> ready;  // (conn, to_acceptor)
    const bool late_delivery = rng_.chance(15);
    for (std::size_t c = 0; c < conns_.size(); ++c) {
        if (conns_[c].zombie && late_delivery && !conns_[c].to_acceptor.empty())
            ready.push_back({static_cast<int>(c), true});
        if (!conns_[c].open) continue;
        if (!conns_[c].to_acceptor.empty()) ready.push_back({static_cast<int>(c), true});
        if (!conns_[c].to_proposer.empty()) ready.push_back({static_cast<int>(c), false});
    }
    if (roll < 55 && !ready.empty()) {
        auto [c, to_acc] = ready[rng_.below(ready.size())];
        // Targeted faults (still plain TCP behaviour): a connection sometimes
        // dies right before an election announcement or a WAL message, which
        // is what leaves terms and WAL on a minority (Raft's figure 8).
        const std::uint8_t head_tag = to_acc ? conns_[c].to_acceptor.front()[0] : 0;
        const bool elected_msg =
            head_tag == static_cast<std::uint8_t>(MessageTag::kProposerElected);
        const bool append_msg = head_tag == static_cast<std::uint8_t>(MessageTag::kAppendRequest);
        if (faults && conns_[c].open &&
            ((elected_msg && rng_.chance(targeted_elected_drop_)) ||
             (append_msg && rng_.chance(targeted_append_drop_))))
            close_connection(c, true,
                             elected_msg ? "network drop before ProposerElected"
                                         : "network drop before AppendRequest");
        else if (to_acc)
            deliver_to_acceptor(c);
        else {
            Conn& conn = conns_[c];
            std::vector<std::uint8_t> bytes = std::move(conn.to_proposer.front());
            conn.to_proposer.pop_front();
            ++stats_->messages;
            SimProposer& sp = proposers_[conn.proposer];
            if (auto slot = slot_of(conn.proposer, conn.acceptor))
                apply(conn.proposer, sp.proposer->on_message(*slot, bytes.data(), bytes.size(), now_));
        }
    } else if (roll < 65 && !pending_connects_.empty()) {
        const std::size_t i = rng_.below(pending_connects_.size());
        auto [p, k] = pending_connects_[i];
        pending_connects_.erase(pending_connects_.begin() + static_cast<long>(i));
        open_connection(p, k);
    } else if (roll < 78) {
        const int k = static_cast<int>(rng_.below(acceptors_.size()));
        if (acceptors_[k].up) acceptor_flush(k);
    } else if (roll < 78 + 10) {
        const int p = static_cast<int>(rng_.below(proposers_.size()));
        if (proposers_[p].running() && !proposers_[p].sync) generate_wal(p);
    } else if (faults && roll < 88 + fault_percent_) {
        const unsigned kind = static_cast<unsigned>(rng_.below(100));
        if (kind < 25) {
            std::vector<int> open;
            for (std::size_t c = 0; c < conns_.size(); ++c)
                if (conns_[c].open) open.push_back(static_cast<int>(c));
            if (!open.empty())
                close_connection(open[rng_.below(open.size())], true, "network drop");
        } else if (kind < 37) {
            const int k = static_cast<int>(rng_.below(acceptors_.size()));
            if (acceptors_[k].up) crash_acceptor(k, rng_.chance(40));
        } else if (kind < 40) {
            // Power loss of a machine whose safekeeper process crashed earlier
            // (its restart may have trusted the page cache).
            const int k = static_cast<int>(rng_.below(acceptors_.size()));
            if (acceptors_[k].up)
                crash_acceptor(k, true);
            else
                acceptors_[k].storage.power_loss();
        } else if (kind < 43) {
            // An operator deletes a live timeline on one member; the next
            // greeting recreates it. Only while every other member holds the
            // committed WAL and knows it is committed (its durable commit_lsn
            // covers it): the data loss itself is not what is tested here, but
            // that the member does not vote twice in a term.
            const int k = static_cast<int>(rng_.below(acceptors_.size()));
            bool others_hold = !recreated_one_;
            for (std::size_t j = 0; j < acceptors_.size() && others_hold; ++j)
                if (static_cast<int>(j) != k &&
                    (acceptors_[j].storage.durable.commit_lsn <
                         kTimelineStart + committed_.size() ||
                     !acceptors_[j].storage.durable_matches(committed_, kTimelineStart, std::max(acceptors_[j].storage.start, kTimelineStart),
                         kTimelineStart + committed_.size())))
                    others_hold = false;
            if (others_hold && acceptors_[k].up) recreate_acceptor(k);
        } else if (kind < 45) {
            if (proposers_.size() == 2) {
                const int to = static_cast<int>(rng_.below(2));
                clone_proposer(1 - to, to);
            }
        } else if (kind < 90) {
            // Partition: each proposer-acceptor link up with 70%.
            std::string desc;
            // Either random links, or (two proposers) a split: each acceptor
            // reachable from one side only, which sets up Raft's figure 8.
            const bool split = proposers_.size() == 2 && rng_.chance(60);
            for (std::size_t k = 0; k < acceptors_.size(); ++k) {
                const std::size_t side = rng_.below(2);
                const bool both = rng_.chance(15);
                for (std::size_t p = 0; p < proposers_.size(); ++p)
                    link_up_[p][k] = split ? (both || p % 2 == side) : rng_.chance(70);
            }
            for (std::size_t p = 0; p < proposers_.size(); ++p) {
                if (p) desc += '|';
                for (std::size_t k = 0; k < acceptors_.size(); ++k)
                    desc += link_up_[p][k] ? '1' : '0';
            }
            note("network partition " + desc);
            for (std::size_t c = 0; c < conns_.size(); ++c)
                if (conns_[c].open && !link_up_[conns_[c].proposer][conns_[c].acceptor])
                    close_connection(static_cast<int>(c), true, "partitioned");
        } else {
            const int p = static_cast<int>(rng_.below(proposers_.size()));
            // (A stopped primary comes back in failover_step.)
            if (proposers_[p].running()) restart_proposer(p);
        }
    } else {
        for (std::size_t k = 0; k < acceptors_.size(); ++k)
            if (!acceptors_[k].up && rng_.chance(30)) restart_acceptor(static_cast<int>(k));
        // An operator restarts a superseded primary: it must be refused again
        // (or, if the quorum's WAL is really its own, elected safely).
        for (std::size_t p = 0; p < proposers_.size(); ++p)
            if (faults && proposers_[p].running() && !proposers_[p].sync &&
                proposers_[p].proposer->state() == ProposerState::kSuperseded && rng_.chance(10))
                restart_proposer(static_cast<int>(p));
        if (!faults || rng_.chance(5)) {
            for (std::size_t p = 0; p < proposers_.size(); ++p)
                for (std::size_t k = 0; k < acceptors_.size(); ++k) link_up_[p][k] = true;
        }
    }
    if (flip_at_step_ && step_ >= flip_at_step_) {
        // Nemesis: the other proposer gets a random majority, the elected one
        // the rest (an acceptor may stay visible to both).
        flip_at_step_ = 0;
        std::vector<std::size_t> order(acceptors_.size());
        for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
        for (std::size_t k = order.size(); k > 1; --k)
            std::swap(order[k - 1], order[rng_.below(k)]);
        std::string desc;
        for (std::size_t i = 0; i < order.size(); ++i) {
            const bool to_other = i < majority();
            const bool both = rng_.chance(10);
            link_up_[flip_towards_][order[i]] = to_other || both;
            link_up_[1 - flip_towards_][order[i]] = !to_other || both;
        }
        for (std::size_t p = 0; p < proposers_.size(); ++p) {
            if (p) desc += '|';
            for (std::size_t k = 0; k < acceptors_.size(); ++k) desc += link_up_[p][k] ? '1' : '0';
        }
        note("nemesis: partition " + desc + " favours P" + std::to_string(flip_towards_));
        for (std::size_t c = 0; c < conns_.size(); ++c)
            if (conns_[c].open && !link_up_[conns_[c].proposer][conns_[c].acceptor])
                close_connection(static_cast<int>(c), true, "partitioned");
    }
    if (failover_) failover_step(faults);
    for (std::size_t p = 0; p < proposers_.size(); ++p)
        if (proposers_[p].running())
            apply(static_cast<int>(p), proposers_[p].proposer->on_tick(now_));
    check_invariants();
}

std::optional<Violation> World::run(Stats& stats) {
    stats_ = &stats;
    total_steps_ = 300 + rng_.below(701);
    setup();
    while (step_ < total_steps_ && !violation_) step();
    stats.steps += step_;
    ++stats.schedules;
    return violation_;
}

std::optional<Violation> World::run_crash_loop(Stats& stats, std::uint64_t elections) {
    stats_ = &stats;
    acceptors_.resize(3);
    for (int k = 0; k < 3; ++k)
        acceptors_[k].acceptor = std::make_unique<Acceptor>(
            acceptor_config(k), &acceptors_[k].storage, AcceptorDurableState{});
    proposers_.resize(1);
    link_up_.assign(1, std::vector<bool>(3, true));
    proposers_[0].conn.assign(3, -1);
    generate_wal(0);
    restart_proposer(0);
    const std::uint64_t budget = elections * 400;
    std::size_t longest = 0;
    while (stats.elections < elections && step_ < budget && !violation_) {
        ++step_;
        now_ += 1 + rng_.below(8);
        std::vector<int> ready;  // only the live proposer's connections carry messages here
        for (int c : proposers_[0].conn)
            if (c >= 0 && conns_[c].open &&
                (!conns_[c].to_acceptor.empty() || !conns_[c].to_proposer.empty()))
                ready.push_back(c);
        if (!ready.empty() && rng_.chance(80)) {
            const int c = ready[rng_.below(ready.size())];
            if (!conns_[c].to_acceptor.empty() &&
                (conns_[c].to_proposer.empty() || rng_.chance(50))) {
                deliver_to_acceptor(c);
            } else {
                Conn& conn = conns_[c];
                std::vector<std::uint8_t> bytes = std::move(conn.to_proposer.front());
                conn.to_proposer.pop_front();
                apply(conn.proposer, proposers_[0].proposer->on_message(conn.acceptor, bytes.data(),
                                                                        bytes.size(), now_));
            }
        } else if (!pending_connects_.empty()) {
            auto [p, k] = pending_connects_.front();
            pending_connects_.erase(pending_connects_.begin());
            open_connection(p, k);
        } else {
            for (int k = 0; k < 3; ++k)
                if (!acceptors_[k].pending_flush.empty()) acceptor_flush(k);
        }
        const ProposerStatus st = proposers_[0].proposer->status();
        if (st.state == ProposerState::kElected) {
            longest = std::max(longest, st.term_history.size());
            for (const SimAcceptor& a : acceptors_)
                longest = std::max(longest, a.acceptor->state().term_history.size());
            // The primary dies once everything is committed and, mostly,
            // once the safekeepers also learned the new truncate_lsn (one
            // heartbeat later); sometimes right at the commit.
            bool horizon_known = true;
            for (const SimAcceptor& a : acceptors_)
                horizon_known = horizon_known && a.acceptor->state().truncate_lsn == st.commit_lsn;
            if (st.commit_lsn >= st.term_start_lsn && st.commit_lsn == proposers_[0].flush_end() &&
                st.truncate_lsn == st.commit_lsn && (horizon_known || rng_.chance(10))) {
                if (rng_.chance(10)) generate_wal(0);  // a restart that wrote WAL
                restart_proposer(0);                   // the primary crashes again
            }
        }
        apply(0, proposers_[0].proposer->on_tick(now_));
        check_invariants();
        if (longest > 8)
            fail("bounded term history", "a history grew to " + std::to_string(longest) +
                                             " entries after " + std::to_string(stats.elections) +
                                             " elections");
    }
    stats.steps += step_;
    ++stats.schedules;
    if (!violation_ && stats.elections < elections)
        fail("elections stopped", "only " + std::to_string(stats.elections) + " of " +
                                      std::to_string(elections) + " elections within " +
                                      std::to_string(budget) + " steps");
    return violation_;
}

}  // namespace wpsim
