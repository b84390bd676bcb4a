// The proposer driver: runs the IO-free wp::Proposer with real libpq
// connections and the primary's WAL, inside the walproposer worker.
//
// Contract: created once per safekeeper set (re-created when
// walproposer.safekeepers changes); owned by the worker through a plain
// pointer and used only from the worker's main loop. All methods are C++
// without PostgreSQL calls that can raise an ERROR, except through
// pg_guarded_call (WAL reading, term-history rename); they may throw
// std::bad_alloc, so the worker calls them under run_cxx. Log lines are
// emitted with elog at LOG/WARNING level, which returns normally.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "safekeeper_conn.h"
#include "shared_status.h"
#include "wal_source.h"
#include "walproposer/commit_wait.h"
#include "walproposer/config.h"
#include "walproposer/proposer.h"

namespace wp::pg {

struct DriverSettings {
    // Legacy form of walproposer.safekeepers (no configuration): the list.
    std::vector<wp::SafekeeperAddress> safekeepers;
    // Member form: the configuration to start from (the persisted one, or
    // generation 1 of the setting's members; generation 0 = legacy form) and
    // the member set the setting asks for (a change is requested when it
    // differs from the configuration's).
    wp::Configuration configuration;
    std::optional<wp::MemberSet> wanted_members;
    wp::ProposerGreeting greeting;
    wp::TermHistory own_term_history;
    wp::Lsn timeline_start_lsn = 0;
    // Where this server's PostgreSQL timeline begins (0 on timeline 1): the
    // switch point of a promoted standby, whose WAL below it it may inherit.
    wp::Lsn timeline_switch_point = 0;
    std::string tenant_hex;
    std::string timeline_hex;
    std::string application_name;
    // walproposer.safekeeper_conninfo, parsed: libpq options of every
    // safekeeper connection (user, passfile, sslmode, ...).
    ConninfoPairs extra_conninfo;
    int connect_timeout_ms = 10000;
    int reconnect_timeout_ms = 1000;
    std::uint64_t random_seed = 1;
};

// One socket the worker should wait on.
struct WaitSocket {
    int fd = -1;
    int events = 0;  // kWaitReadable | kWaitWritable
};

class Driver {
public:
    explicit Driver(DriverSettings settings);

    void start(wp::TimeMs now, wp::Lsn local_flush_lsn);
    void on_wal_available(wp::Lsn local_flush_lsn, wp::TimeMs now);
    void on_tick(wp::TimeMs now);
    // How long the loop may wait before on_tick() is due again: `longest`,
    // or less when the proposer has a deadline sooner (a deferred commit
    // notice). Never negative.
    long wait_timeout_ms(wp::TimeMs now, long longest) const;

    // A new commit LSN reaches the safekeepers with the next WAL sent, or
    // this long after it advanced when no WAL follows
    // (ProposerConfig::commit_notice_delay_ms).
    static constexpr wp::TimeMs kCommitNoticeDelayMs = 5;
    // The socket of safekeeper `index` became ready (or may have).
    void on_socket_ready(std::size_t index, wp::TimeMs now);

    // Connection slots (at most wp::kMaxSafekeepers: beyond that the driver
    // turns unhealthy and the worker restarts, rebuilding them).
    std::size_t safekeeper_count() const { return connections_.size(); }
    WaitSocket wait_socket(std::size_t index) const;

    // Narrow views of the proposer for the worker's loop (no copies, no
    // allocation, never throw).
    wp::Lsn commit_lsn() const noexcept { return proposer_->commit_lsn(); }
    wp::Lsn truncate_lsn() const noexcept { return proposer_->truncate_lsn(); }
    // What the primary's slot keeps (Proposer::primary_retention_lsn).
    wp::Lsn primary_retention_lsn() const noexcept { return proposer_->primary_retention_lsn(); }
    // Highest LSN sent to any safekeeper in the current term.
    wp::Lsn sent_lsn() const noexcept { return proposer_->sent_lsn(); }
    bool elected() const noexcept { return proposer_->state() == wp::ProposerState::kElected; }
    wp::Proposer::HotStandbyFeedback hot_standby_feedback() const noexcept {
        return proposer_->hot_standby_feedback();
    }
    // Member form: asks for the member set `members` (validated; the error
    // says why it cannot be asked). The elected proposer drives the change.
    wp::Status request_membership(const wp::MemberSet& members);
    // New libpq options for connections made from now on (a reload of
    // walproposer.safekeeper_conninfo); open connections are kept.
    void set_extra_conninfo(ConninfoPairs pairs) { settings_.extra_conninfo = std::move(pairs); }
    // The configuration in force (generation 0: the legacy form).
    const wp::Configuration& configuration() const noexcept { return proposer_->configuration(); }
    // False after persisting the term history or the configuration failed:
    // the worker must exit.
    bool healthy() const { return healthy_; }
    const std::string& fatal_error() const { return fatal_error_; }

    // Writes the proposer's state, term, LSNs and one row per safekeeper into
    // `status` (the worker's private staging copy, worker_status.cpp; no lock
    // needed); the message only when there is one (a superseded proposer's
    // reason), so the caller keeps its last message otherwise.
    void fill_status(SharedStatus* status, wp::Lsn local_flush_lsn) const;

    // Feeds the commit-wait monitor (walproposer/commit_wait.h) with the
    // lowest LSN a COMMIT waits for; returns the log line to write, if any.
    std::optional<std::string> commit_wait_update(wp::TimeMs now, wp::Lsn oldest_waiter);
    // When the current wait for the quorum began (0: no COMMIT waits).
    wp::TimeMs commit_wait_since() const {
        return commit_wait_.waiting() ? std::max<wp::TimeMs>(1, commit_wait_.waiting_since()) : 0;
    }

private:
    void execute(wp::ProposerOutput&& output, wp::TimeMs now);
    void connect(std::size_t index, wp::TimeMs now);
    void lost(std::size_t index, const std::string& reason, wp::TimeMs now);
    // Where slot `index` connects: the configuration's member, or the
    // legacy list's entry.
    wp::SafekeeperAddress address_of(std::size_t index) const;
    // One connection per proposer slot (slots only grow).
    void sync_slots();
    void fail(std::string error);

    DriverSettings settings_;
    PgWalSource wal_;
    std::unique_ptr<wp::Proposer> proposer_;
    std::vector<std::unique_ptr<SafekeeperConnection>> connections_;
    std::vector<wp::TimeMs> connect_started_at_;
    std::vector<std::string> last_logged_error_;
    wp::CommitWaitMonitor commit_wait_;
    std::vector<std::vector<std::uint8_t>> inbox_;
    bool healthy_ = true;
    std::string fatal_error_;
};

}  // namespace wp::pg
