// Timelines and the registry of all timelines of the daemon.
//
// A Timeline couples the core's Acceptor with its WalStorage. Threading:
//  * `mutex()` guards the acceptor and the storage; the proposer connection
//    holds it while it handles a batch (including the batch's fdatasync),
//    so a slow disk on one timeline only delays that timeline.
//  * A TimelineSnapshot is published (under a separate small mutex) after
//    every change; the HTTP API and metrics read only snapshots, so they
//    never wait for a timeline's IO.
//  * commit_lsn advances are broadcast on a condition variable, which
//    wait_for_commit_beyond() waits on without polling; the WAL senders do
//    not use it: they are woken through their eventfds in consumers()
//    (wal_consumers.h).
// States: kActive -> kBroken (IO error or corrupt control file; refuses
// service until restart, files left untouched) ; kActive -> kDeleted.
// An active timeline may be "disk full" (snapshot().disk_full): its last
// write failed only because the file system is full and changed nothing;
// it acknowledges nothing new until writes succeed again (the proposer
// reconnects and retries); the flag clears by itself once the flush LSN
// moved beyond where it stopped and the control file was written again.
// WAL retention (retention/horizon.h) runs with the periodic persist of the
// horizons: slots and the --max-wal-retention cap decide which whole
// segments below the horizon are removed.
//
// TimelineRegistry: thread-safe map of timelines; loads every timeline
// directory at start-up (a corrupt one is registered as kBroken, the others
// keep working), creates new ones on first push, deletes on request.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "retention/horizon.h"
#include "retention/slot_store.h"
#include "storage/durable_file.h"
#include "walproposer/result.h"
#include "timeline/wal_consumers.h"
#include "storage/wal_storage.h"
#include "walproposer/acceptor.h"
#include "walproposer/acceptor_session.h"
#include "walproposer/timeline_key.h"

namespace wp::sk {


enum class TimelineState { kActive, kBroken, kDeleted };
const char* timeline_state_name(TimelineState s);

struct TimelineSnapshot {
    TimelineState state = TimelineState::kActive;
    std::string last_error;
    Term term = 0;
    TermHistory term_history;
    Lsn flush_lsn = 0, write_lsn = 0, commit_lsn = 0, truncate_lsn = 0, timeline_start_lsn = 0;
    std::uint64_t system_id = 0;
    std::uint32_t pg_version = 0, pg_timeline = 0, wal_segment_size = 0;
    std::uint32_t min_pg_timeline = 0;  // the failover fence (0 = none)
    Configuration configuration;        // membership (generation 0 = none)
    bool proposer_connected = false;
    std::string proposer_peer;
    Term proposer_term = 0;
    std::vector<std::string> consumers;  // not filled: consumers() lists the WAL consumers
    // Disk full (see the class comment): set with the error and when.
    bool disk_full = false;
    std::string disk_full_error;
    std::int64_t disk_full_since_unix_ms = 0;
    // WAL retention.
    Lsn removal_horizon = 0;  // last computed horizon (0: not yet)
    std::uint64_t retention_cutoffs = 0;  // slots invalidated + lagging-member cut-offs
    std::uint64_t disk_full_events = 0;
};

// What peer recovery (recovery/peer_recovery.h) last saw and did for one
// timeline; for the status API and metrics.
struct PeerView {
    NodeId id = 0;
    std::string address;       // its PostgreSQL-protocol host:port (from the configuration)
    std::string http_address;  // where its HTTP API was found ("" until found)
    Lsn flush_lsn = 0, commit_lsn = 0, timeline_start_lsn = 0;  // from its last snapshot
    std::int64_t seen_unix_ms = 0;  // 0: never reached
    std::string error;              // why the last attempt to reach it failed ("" if it worked)
};
struct PeerRecoveryStatus {
    bool active = false;  // copying WAL from a peer right now
    NodeId peer = 0;      // the peer of the current or last recovery
    Lsn target_lsn = 0;   // the current or last recovery's target (the peer's commit_lsn)
    std::uint64_t recovered_bytes = 0;  // WAL bytes taken from peers since start-up
    std::uint64_t recoveries = 0;       // recoveries that reached their target
    std::uint64_t bootstraps = 0;       // rebuilt from a peer's copy (pull_timeline)
    std::string last_error;             // "" when the last attempt worked
    std::vector<PeerView> peers;
};

class Timeline {
public:
    // Active timeline over an opened storage. `slots` null: the slot file in
    // the storage's directory is loaded (a corrupt one makes it broken).
    Timeline(Id128 tenant, Id128 timeline, NodeId node_id, std::unique_ptr<WalStorage> storage,
             std::unique_ptr<SlotStore> slots = nullptr);
    // Broken timeline (could not be opened).
    Timeline(Id128 tenant, Id128 timeline, std::string error);

    const Id128& tenant_id() const { return tenant_; }
    const Id128& timeline_id() const { return timeline_; }
    // "tenant/timeline" in hex; used in logs.
    const std::string& name() const { return name_; }

    // Guards acceptor() and storage(). Both are null for a broken timeline.
    std::mutex& mutex() { return mutex_; }
    Acceptor* acceptor() { return acceptor_.get(); }
    WalStorage* storage() { return storage_.get(); }

    // Must hold mutex(). Refreshes the snapshot; wakes commit waiters when
    // commit_lsn advanced.
    void publish_locked();
    TimelineSnapshot snapshot() const;
    TimelineState state() const { return state_.load(); }
    // Must hold mutex(). Stops service on this timeline (the storage state is
    // unknown after an IO error: PostgreSQL's fsync rule, never retry).
    void mark_broken_locked(const std::string& error);
    void mark_deleted();
    void set_last_error(const std::string& error);

    // Blocks until commit_lsn > lsn, the timeline stops being active, or the
    // timeout passes. Returns the current commit_lsn. Thread-safe.
    Lsn wait_for_commit_beyond(Lsn lsn, std::chrono::milliseconds timeout);
    // The published commit_lsn (cheap; no copy of the snapshot). Thread-safe.
    Lsn published_commit_lsn() const;

    // WAL consumers of this timeline (send_wal/replication_commands.h); woken through
    // their eventfds whenever commit_lsn advances or the state changes.
    ConsumerSet& consumers() { return consumers_; }

    // Proposer streaming ownership: only one connection streams at a time.
    // The rule lives in the core (walproposer/acceptor_session.h): each
    // proposer connection's AcceptorSession claims streaming_locked() when
    // its ProposerElected is accepted, with the connection id as session id.
    // streaming_claimed_locked() then does the daemon's part: the earlier
    // streamer is interrupted (its `interrupt` runs, which shuts its socket
    // down), so that nothing it still has in flight is read any more (the
    // core refuses such late messages anyway; this makes the old session end
    // at once), and the snapshot shows `peer`. `holder` identifies the
    // connection (compared, never dereferenced); `interrupt` must stay
    // callable until streaming_released_locked() is called after its
    // session's close(). Must hold mutex().
    wp::StreamingSlot& streaming_locked() { return streaming_; }
    void streaming_claimed_locked(const void* holder, std::function<void()> interrupt,
                                  const std::string& peer);
    // After a session's close(): forgets the socket if the slot is now free,
    // and the storage closes its files (WalStorage::release_files).
    void streaming_released_locked();
    // Must hold mutex(); persists commit/truncate LSNs if due (at most once a
    // second, or `force`), then runs WAL retention (run_retention_locked).
    void maybe_persist_horizons_locked(bool force);
    // Must hold mutex(). Computes the removal horizon from the durable
    // commit/truncate LSNs and the slots, invalidates slots cut off by the
    // cap (persisted before any WAL goes), removes whole segments below it.
    void run_retention_locked();
    // What storage_failed_locked() made of a failure.
    enum class StorageFailure { kBroken, kDiskFull, kOutOfResources };
    // Must hold mutex(). After the acceptor or storage reported a failure:
    // "disk full" if the storage says the file system was full and nothing
    // changed (the storage is settled, the acceptor resumes, logged once per
    // occurrence); "out of resources" likewise when file descriptors or
    // memory ran out (logged each time; the timeline stays active and the
    // request is refused); otherwise mark_broken_locked(error).
    StorageFailure storage_failed_locked(const std::string& error);

    // Persisted replication slots (null only for a broken timeline).
    SlotStore* slots() { return slots_.get(); }
    // Persists the slots if due (or `force`); logs only when persisting
    // starts or stops failing. Thread-safe (does not take mutex()).
    void persist_slots(bool force);
    // The --max-wal-retention cap in bytes (0 = none). Thread-safe.
    void set_max_wal_retention(std::uint64_t bytes) { max_wal_retention_ = bytes; }
    std::uint64_t max_wal_retention() const { return max_wal_retention_; }
    // The --wal-keep-size floor in bytes (0 = none). Thread-safe.
    void set_wal_keep_size(std::uint64_t bytes) { wal_keep_size_ = bytes; }
    std::uint64_t wal_keep_size() const { return wal_keep_size_; }

    StorageCounters* counters() { return storage_ ? &storage_->counters() : nullptr; }

    // Peer recovery's status (written by the recovery thread). Thread-safe.
    PeerRecoveryStatus peer_recovery() const;
    void set_peer_recovery(PeerRecoveryStatus status);

private:
    Id128 tenant_, timeline_;
    std::string name_;
    std::mutex mutex_;
    std::unique_ptr<WalStorage> storage_;
    std::unique_ptr<Acceptor> acceptor_;
    std::atomic<TimelineState> state_{TimelineState::kActive};

    wp::StreamingSlot streaming_;
    // The slot holder's connection and how to interrupt it (null/empty: none).
    const void* streamer_ = nullptr;
    std::function<void()> interrupt_streamer_;
    std::chrono::steady_clock::time_point last_horizon_persist_{};
    std::unique_ptr<SlotStore> slots_;
    std::atomic<std::uint64_t> max_wal_retention_{0};
    std::atomic<std::uint64_t> wal_keep_size_{0};
    std::atomic<bool> slot_persist_failing_{false};
    bool member_cut_off_ = false;  // a lagging member is cut off now (logged once)
    Lsn disk_full_flush_ = 0;      // flush LSN when the disk-full state began
    std::uint64_t disk_full_control_writes_ = 0;  // storage control_writes() then

    mutable std::mutex peer_recovery_mutex_;
    PeerRecoveryStatus peer_recovery_;
    mutable std::mutex snapshot_mutex_;
    std::condition_variable commit_cv_;
    TimelineSnapshot snapshot_;
    ConsumerSet consumers_;
};

class TimelineRegistry {
public:
    TimelineRegistry(FileSystem& fs, std::string data_dir, NodeId node_id, WalStorageOptions options = {});
    // The --max-wal-retention cap (bytes, 0 = none) given to every timeline
    // loaded or created after this call. Call before load_all().
    void set_max_wal_retention(std::uint64_t bytes) { max_wal_retention_ = bytes; }
    // The --wal-keep-size floor (bytes, 0 = none), likewise.
    void set_wal_keep_size(std::uint64_t bytes) { wal_keep_size_ = bytes; }

    // Scans DATA_DIR/<tenant>/<timeline>/ and opens every timeline, on up
    // to kLoadThreads threads (the FileSystem must be thread-safe). Never
    // fails because of one bad timeline; returns an error only if DATA_DIR
    // itself cannot be read or fsynced. Registered as kBroken (files left
    // as they are): a timeline whose storage cannot be opened (corrupt
    // control file, failed start-up fsync), whose control file's commit_lsn
    // is above the recovered end of WAL, or whose directory holds WAL
    // segments but no control file. A directory with neither a control file
    // nor WAL segments (creation interrupted) is skipped.
    Status load_all();
    std::shared_ptr<Timeline> find(const Id128& tenant, const Id128& timeline);
    // Existing timeline, or a new empty one created durably on disk. If the
    // timeline was deleted before, the new one starts at its tombstone's
    // term; an unreadable tombstone refuses creation (kCorrupt). Refused
    // (kInvalidInput) while a pull of it is in progress (begin_pull). The
    // files are created without holding the registry lock, so a slow disk
    // delays only this call; a concurrent call for the same timeline waits
    // for this creation and returns its outcome (a failure is not shared: it
    // tries again itself).
    Result<std::shared_ptr<Timeline>> find_or_create(const Id128& tenant, const Id128& timeline);
    std::vector<std::shared_ptr<Timeline>> list();
    // Removes the timeline: refuses (kInvalidInput, nothing changed) while a
    // proposer streams to it unless `force`; marks it deleted (its
    // connections stop), durably writes its tombstone (the highest term it
    // promised: TENANT_DIR/<timeline>.tombstone), renames its directory
    // durably out of the way, then removes the files. kNotFound if unknown.
    // `reserve_for_pull`: the timeline is reserved for a pull (as by
    // begin_pull) in the same step that unregisters it, so no proposer can
    // create it empty before the pull that rebuilds it (peer recovery's
    // bootstrap; the caller runs the pull with PullOptions::reserved).
    Status remove(const Id128& tenant, const Id128& timeline, bool force = false,
                  bool reserve_for_pull = false);
    // Persists commit/truncate LSNs and slots of every active timeline (shutdown).
    void persist_all_horizons();
    NodeId node_id() const { return node_id_; }
    // The HTTP API's address as peers should use it ("HOST:PORT"; the host may
    // be a wildcard such as 0.0.0.0, which a peer replaces by the host it
    // reached this node at). Served as `SHOW safekeeper_http_address` so a
    // peer safekeeper can find the API for peer recovery. Thread-safe.
    void set_http_address(std::string address);
    std::string http_address() const;

    // --- pull_timeline (pull_timeline/pull.h) ---
    // Reserves (tenant, timeline) for a pull from a peer: kInvalidInput if
    // this node has the timeline (also a broken one) or a pull of it is in
    // progress. While reserved, find_or_create() refuses it, so a proposer
    // cannot create it empty in the meantime. end_pull() releases it.
    Status begin_pull(const Id128& tenant, const Id128& timeline);
    void end_pull(const Id128& tenant, const Id128& timeline);
    // DATA/<tenant>/.pull-<timeline>: where a pull stages the files; load_all()
    // removes it (an interrupted pull leaves nothing).
    std::string pull_staging_dir(const Id128& tenant, const Id128& timeline) const;
    // The tombstone of the timeline if it was deleted on this node before.
    Result<std::optional<Tombstone>> load_tombstone_of(const Id128& tenant, const Id128& timeline);
    // Moves a complete, durable staging directory into place (rename, then
    // fsync of the tenant directory: from then on a crash keeps the whole
    // timeline), opens it with start-up recovery and registers it. Requires
    // begin_pull(). An error before the rename leaves the staging directory
    // to the caller; a timeline that cannot be opened after it is registered
    // as broken (as at start-up) and the error returned.
    Result<std::shared_ptr<Timeline>> install_pulled(const Id128& tenant, const Id128& timeline);
    FileSystem& file_system() { return fs_; }
    const WalStorageOptions& storage_options() const { return options_; }

private:
    // find_or_create()'s creation proper, without the registry lock.
    Result<std::shared_ptr<Timeline>> create_timeline(const Id128& tenant, const Id128& timeline);
    // load_all()'s work for one timeline directory: the timeline to
    // register (also a broken one), or null when the directory is skipped.
    std::shared_ptr<Timeline> load_timeline(const Id128& tenant, const Id128& timeline,
                                            const std::string& name, const std::string& dir);
    std::string timeline_dir(const Id128& tenant, const Id128& timeline) const;
    std::string tombstone_path(const Id128& tenant, const Id128& timeline) const;

    // Threads that open timelines at start-up (load_all).
    static constexpr std::size_t kLoadThreads = 8;

    FileSystem& fs_;
    std::string data_dir_;
    NodeId node_id_;
    WalStorageOptions options_;
    std::uint64_t max_wal_retention_ = 0;
    std::uint64_t wal_keep_size_ = 0;
    std::mutex mutex_;
    std::map<TimelineKey, std::shared_ptr<Timeline>> timelines_;
    std::set<TimelineKey> pulling_;  // reserved by begin_pull
    std::set<TimelineKey> creating_;  // find_or_create() making their files now
    std::condition_variable creation_done_;  // a creation ended (with mutex_)
    mutable std::mutex http_address_mutex_;
    std::string http_address_;
};

}  // namespace wp::sk
