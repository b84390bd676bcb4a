// The removal horizon of one timeline on a safekeeper (docs/storage.md,
// "WAL retention"): which WAL may be removed, and who is cut off by the
// --max-wal-retention cap.
//
// Rules:
//  * horizon = min(truncate_lsn, commit_lsn, restart LSN of every valid
//    slot that reserves WAL and is not already below the timeline start); truncate_lsn is WAL every
//    member holds (the proposer computes it), so a lagging member holds WAL back;
//  * with a floor (keep > 0) the horizon is at most flush_lsn - keep: the
//    last `keep` bytes stay, so a standby restored from a recent base
//    backup (it asks for the start of the segment it stopped in) or a
//    consumer that reconnects without a slot still finds its WAL;
//  * with a cap (max_retention > 0) and flush_lsn - horizon > cap, the
//    horizon is raised to min(flush_lsn - cap, commit_lsn): every slot below
//    it is cut off (invalidated), and if truncate_lsn is below it a lagging
//    member is cut off;
//  * never above commit_lsn; removal keeps the whole segment holding
//    min(horizon, wal_scan_start_lsn) (start-up decoding begins at the scan
//    start, a record boundary) and everything after it.
//
// Contract: pure functions, no IO, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "retention/slot_store.h"
#include "walproposer/lsn.h"
#include "walproposer/result.h"

namespace wp::sk {

struct RetentionInput {
    // Durable values of the timeline (control file) and its WAL.
    Lsn timeline_start = kInvalidLsn;
    Lsn flush_lsn = kInvalidLsn;
    Lsn commit_lsn = kInvalidLsn;
    Lsn truncate_lsn = kInvalidLsn;
    Lsn scan_start = kInvalidLsn;  // wal_scan_start_lsn; 0 = unknown (nothing is removed)
    std::uint32_t segment_size = 0;
    std::uint64_t max_retention = 0;  // bytes; 0 = no cap
    std::uint64_t keep = 0;           // bytes kept below flush_lsn at least (--wal-keep-size)
    std::vector<SlotData> slots;
};

struct RetentionDecision {
    Lsn horizon = kInvalidLsn;       // WAL below it is no longer needed
    Lsn remove_below = kInvalidLsn;  // new timeline start (segment start); 0 = remove nothing
    std::vector<std::string> cut_off_slots;  // valid slots below a capped horizon
    bool member_cut_off = false;             // truncate_lsn lies below a capped horizon
    bool capped = false;                     // the cap raised the horizon
};

RetentionDecision decide_retention(const RetentionInput& in);

// --max-wal-retention's value: "off" or "0" (no cap), or a whole number with
// an optional unit B, kB, MB, GB, TB (1024-based, case-insensitive), e.g.
// "512MB". kInvalidInput with a message otherwise.
Result<std::uint64_t> parse_byte_size(const std::string& text);

}  // namespace wp::sk
