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

#include "pull_timeline/http_format.h"
#include "timeline/timeline.h"
#include "walproposer/result.h"

namespace wp::sk {

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

}  // namespace wp::sk
