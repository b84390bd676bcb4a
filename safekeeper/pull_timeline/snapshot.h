// Timeline snapshots for pull_timeline (docs/safekeeper.md, "Adding a
// safekeeper: pull_timeline"): what a healthy safekeeper (the source) hands
// to a new, empty one (the destination).
//
// A snapshot is taken under the timeline's lock, so it is a state the source
// really had: its durable control state (encoded with the control file's own
// encoder, CRC included), its flush LSN, and the list of WAL segment files
// it holds up to that flush LSN. WAL bytes are then read in chunks, each under
// the timeline's lock (read_snapshot_wal), and each chunk is served only if
// the source still holds the snapshot's WAL unchanged: its flush LSN is at or
// above the snapshot's, and the term that wrote the WAL just below the
// snapshot's flush LSN is still the snapshot's `wal_term`. A term's proposer
// writes one WAL stream, so two states of the source that agree on the term
// of the byte at flush-1 hold the same bytes below flush (the term history
// rule, walproposer/term_history.h); a truncation below the snapshot's flush
// LSN by a newer term changes that term and makes every later chunk fail
// (HTTP 409), so the destination never mixes WAL of two histories.
//
// Contract: pure functions on values, except take_snapshot and
// read_snapshot_wal, which take the timeline's mutex themselves (never call
// them holding it). Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "timeline/timeline.h"
#include "walproposer/result.h"

namespace wp::sk {

// One WAL segment file of a snapshot: bytes [start_lsn, end_lsn) of it are
// copied (start_lsn is the segment's start; end_lsn is the segment's end, or
// the snapshot's flush LSN for the last one).
struct SnapshotSegment {
    std::string
        file_name;  // as on the source: 24 hex digits, ".partial" for the last one if incomplete
    Lsn start_lsn = kInvalidLsn;
    Lsn end_lsn = kInvalidLsn;
};

struct PullSnapshot {
    Id128 tenant_id{};
    Id128 timeline_id{};
    NodeId source_node = 0;
    Lsn flush_lsn = kInvalidLsn;  // the source's flush LSN when the snapshot was taken
    Term wal_term = 0;            // term that wrote the WAL just below flush_lsn (0: no WAL)
    Lsn timeline_start_lsn = kInvalidLsn;   // first LSN of the timeline's WAL
    std::string control_file;               // encode_control_file() of the source's durable state
    std::vector<SnapshotSegment> segments;  // ascending, contiguous, ending at flush_lsn
};

// The term of the proposer that wrote the WAL byte at lsn - 1: the term of
// the last history entry that starts below `lsn` (0 if none).
Term term_of_wal_below(const TermHistory& history, Lsn lsn);

// Takes a snapshot of an active timeline (kInvalidInput if it is broken or
// deleted). Locks tl.mutex().
Result<PullSnapshot> take_snapshot(Timeline& tl, NodeId node_id);

// The largest WAL read read_snapshot_wal serves at once (it holds the
// timeline lock for the read).
constexpr std::uint64_t kMaxSnapshotWalChunk = 1 << 20;

// Appends WAL bytes [start, end) of the snapshot (flush_lsn, wal_term) to
// `out`. Locks tl.mutex() for the read. Errors: kInvalidInput (bad range:
// end > flush_lsn, start >= end, more than kMaxSnapshotWalChunk bytes, or
// the timeline is not active); `stale` when the source no longer holds the
// snapshot's WAL (truncated by a newer term: the pull must start again);
// kNotFound (the segment file is gone); or the storage's read error.
struct SnapshotWalRead {
    Status status;
    bool stale = false;  // the snapshot's WAL was truncated: start the pull again
};
SnapshotWalRead read_snapshot_wal(Timeline& tl, Lsn flush_lsn, Term wal_term, Lsn start, Lsn end,
                                  std::string& out);

// JSON form (docs/http-api.md, GET .../snapshot).
std::string snapshot_to_json(const PullSnapshot& s);
// Parses and checks the form (not the content: see pull.h). kInvalidInput.
Result<PullSnapshot> snapshot_from_json(const std::string& text);

}  // namespace wp::sk
