// Timeline's WAL retention and disk-full handling (the contract is in
// timeline/timeline.h; the rules in retention/horizon.h and docs/storage.md).
#include <spdlog/spdlog.h>

#include <chrono>

#include "timeline/timeline.h"

namespace wp::sk {
namespace {

std::int64_t unix_now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

void Timeline::persist_slots(bool force) {
    if (!slots_) return;
    Status s = slots_->persist_if_due(force);
    if (!s.ok()) {
        if (!slot_persist_failing_.exchange(true))
            spdlog::warn("timeline {}: cannot persist replication slots (retried every second): {}",
                         name_, s.message());
    } else if (slot_persist_failing_.exchange(false)) {
        spdlog::info("timeline {}: replication slots persisted again", name_);
    }
}

void Timeline::run_retention_locked() {
    if (!acceptor_ || !slots_ || state_.load() != TimelineState::kActive || acceptor_->failed())
        return;
    const ControlFileData& c = storage_->control();
    RetentionInput in;
    in.timeline_start = storage_->timeline_start_lsn();
    in.flush_lsn = storage_->flush_lsn();
    in.commit_lsn = c.acceptor.commit_lsn;
    in.truncate_lsn = c.acceptor.truncate_lsn;
    in.scan_start = c.wal_scan_start_lsn;
    in.segment_size = c.acceptor.identity.wal_segment_size;
    in.max_retention = max_wal_retention_.load();
    in.keep = wal_keep_size_.load();
    in.slots = slots_->list();
    const RetentionDecision d = decide_retention(in);
    {
        std::lock_guard<std::mutex> g(snapshot_mutex_);
        snapshot_.removal_horizon = d.horizon;
    }
    std::uint64_t cutoffs = 0;
    for (const std::string& slot : d.cut_off_slots) {
        Lsn restart = 0;
        if (auto s = slots_->find(slot)) restart = s->restart_lsn;
        spdlog::warn(
            "timeline {}: replication slot \"{}\" cut off by --max-wal-retention ({} bytes): its "
            "restart LSN {} is too far behind the end of WAL {}; WAL below {} will be removed and "
            "the slot is invalidated",
            name_, slot, in.max_retention, format_lsn(restart), format_lsn(in.flush_lsn),
            format_lsn(d.horizon));
        slots_->invalidate(slot, d.horizon);
        ++cutoffs;
    }
    if (d.member_cut_off && !member_cut_off_) {
        spdlog::warn(
            "timeline {}: a lagging member is cut off by --max-wal-retention ({} bytes): "
            "truncate_lsn {} (WAL every member holds) is too far behind the end of WAL {}; WAL "
            "below {} will be removed; a member behind it rebuilds its copy from a peer when it "
            "comes back (peer recovery)",
            name_, in.max_retention, format_lsn(in.truncate_lsn), format_lsn(in.flush_lsn),
            format_lsn(d.horizon));
        ++cutoffs;
    }
    member_cut_off_ = d.member_cut_off;
    if (cutoffs) {
        std::lock_guard<std::mutex> g(snapshot_mutex_);
        snapshot_.retention_cutoffs += cutoffs;
    }
    if (!d.cut_off_slots.empty()) {
        // The invalidation is durable before the slot's WAL goes: a restart
        // never finds a valid slot whose WAL is missing.
        Status s = slots_->persist_if_due(true);
        if (!s.ok()) {
            spdlog::warn("timeline {}: cannot persist invalidated slots; WAL is not removed: {}",
                         name_, s.message());
            return;
        }
    }
    if (d.remove_below == kInvalidLsn) return;
    auto removed = storage_->remove_wal_below(d.remove_below);
    if (!removed) {
        if (removed.status().kind() == StatusKind::kInvalidInput) {
            spdlog::warn("timeline {}: WAL removal refused: {}", name_, removed.status().message());
            return;
        }
        mark_broken_locked("WAL removal failed: " + removed.status().message());
        return;
    }
    acceptor_->wal_removed_below(d.remove_below);
    if (*removed)
        spdlog::debug("timeline {}: removed {} bytes of WAL below {}", name_, *removed,
                      format_lsn(d.remove_below));
    publish_locked();
}

Timeline::StorageFailure Timeline::storage_failed_locked(const std::string& error) {
    if (!storage_ || !acceptor_ || !storage_->failure().ok() ||
        !(storage_->out_of_space() || storage_->out_of_resources())) {
        mark_broken_locked(error);
        return StorageFailure::kBroken;
    }
    const bool resources = storage_->out_of_resources() && !storage_->out_of_space();
    Status settled = storage_->settle_after_out_of_space();
    if (!settled.ok()) {
        mark_broken_locked(error + "; then: " + settled.message());
        return StorageFailure::kBroken;
    }
    acceptor_->clear_transient_failure();
    if (resources) {
        spdlog::error(
            "timeline {}: out of file descriptors or memory: {}; nothing was changed and the "
            "timeline stays active; the request is refused (raise the open-file limit, see the "
            "start-up log)",
            name_, error);
        publish_locked();
        return StorageFailure::kOutOfResources;
    }
    bool first = false;
    {
        std::lock_guard<std::mutex> g(snapshot_mutex_);
        if (!snapshot_.disk_full) {
            first = true;
            snapshot_.disk_full = true;
            snapshot_.disk_full_error = error;
            snapshot_.disk_full_since_unix_ms = unix_now_ms();
            ++snapshot_.disk_full_events;
        }
    }
    disk_full_flush_ = storage_->flush_lsn();
    disk_full_control_writes_ = storage_->control_writes();
    if (first)
        spdlog::error(
            "timeline {}: disk full: {}; nothing was changed, and WAL is acknowledged up to {} "
            "only; this timeline acknowledges no more WAL until space is freed (the proposer "
            "retries by itself)",
            name_, error, format_lsn(disk_full_flush_));
    else
        spdlog::debug("timeline {}: still disk full: {}", name_, error);
    publish_locked();
    return StorageFailure::kDiskFull;
}

}  // namespace wp::sk
