// pull_timeline on the destination: a new, empty safekeeper copies a
// timeline from a healthy peer (the source) while the cluster keeps
// committing (docs/safekeeper.md, "Adding a safekeeper: pull_timeline").
//
// Steps (each failure stops the pull, removes the staging directory and
// leaves this node as it was):
//  1. reserve the timeline in the registry (refused if it exists here or a
//     pull of it runs: PullFailure::kConflict);
//  2. fetch the source's snapshot (snapshot.h) and check it (verify_snapshot):
//     ids, control file CRC and content, segment names and ranges;
//  3. download the WAL of every segment into DATA/<tenant>/.pull-<timeline>/,
//     in chunks of at most kMaxSnapshotWalChunk bytes, each checked for its
//     size, and decode it as it arrives (page headers, record CRCs): the copy
//     must decode up to the snapshot's commit_lsn with no invalid record;
//     every file is fdatasynced;
//  4. write the flush hint (the snapshot's flush LSN, which may lie inside a
//     record) and the control file (the source's, with the term and fence
//     raised to this node's tombstone of the timeline, if it deleted it
//     before: a node never votes twice in one term), fsync the staging
//     directory;
//  5. rename the staging directory to DATA/<tenant>/<timeline> and fsync the
//     tenant directory; open it with the ordinary start-up recovery and
//     register it.
// A crash before the rename of 5 is durable leaves only the staging
// directory, which start-up removes (TimelineRegistry::load_all); after it,
// the whole timeline. The copied timeline's flush LSN is the snapshot's.
//
// Thread-safety: pull_timeline may run on several threads for different
// timelines; the registry serializes what it must. It blocks for the whole
// copy (call it from an HTTP worker thread, never under a timeline lock).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "pull_timeline/snapshot.h"
#include "storage/control_file.h"
#include "timeline/timeline.h"
#include "walproposer/result.h"

namespace wp::sk {

// Where a snapshot and its WAL come from: HttpSnapshotSource (http_source.h)
// talks to a peer's HTTP API; tests also use an in-process source.
class SnapshotSource {
  public:
    virtual ~SnapshotSource() = default;
    // For messages: "http://127.0.0.1:7676".
    virtual std::string describe() const = 0;
    virtual Result<PullSnapshot> fetch_snapshot(const Id128& tenant, const Id128& timeline) = 0;
    // Appends the snapshot's WAL bytes [start, end) to `out` (at most
    // kMaxSnapshotWalChunk bytes). The source checks under its timeline lock
    // that it still holds the snapshot's WAL (snapshot.h).
    virtual Status read_wal(const PullSnapshot& snapshot, Lsn start, Lsn end, std::string& out) = 0;
};

struct PullOptions {
    // Limits the copy's WAL download rate (0: no limit), to spare the
    // source's disk and network while it serves its cluster.
    std::uint64_t max_bytes_per_second = 0;
    // Set when the daemon shuts down: the pull stops before its next chunk
    // and leaves nothing (PullFailure::kLocal). Must outlive the pull.
    const std::atomic<bool>* cancel = nullptr;
    // The caller reserved the timeline already (TimelineRegistry::remove with
    // reserve_for_pull): step 1 is skipped; the reservation is released at
    // the end either way.
    bool reserved = false;
};

enum class PullFailure {
    kNone,
    kConflict,  // the timeline exists here, or a pull of it is in progress
    kSource,    // the source failed, went away, or sent something invalid
    kLocal,     // a file operation on this node failed
};
const char* pull_failure_name(PullFailure f);

struct PullOutcome {
    PullFailure failure = PullFailure::kNone;
    Status status;          // the error when failure != kNone
    PullSnapshot snapshot;  // what was copied (when the snapshot was fetched)
    Term term = 0;          // term of the installed control file
    Lsn commit_lsn = kInvalidLsn;
    std::uint64_t wal_bytes = 0;  // WAL bytes downloaded
    double seconds = 0;
    bool ok() const { return failure == PullFailure::kNone; }
};

PullOutcome pull_timeline(TimelineRegistry& registry, const Id128& tenant, const Id128& timeline,
                          SnapshotSource& source, const PullOptions& options = {});

// Checks a snapshot against the ids asked for and against itself; returns
// its decoded control file. kInvalidInput naming the first problem.
Result<ControlFileData> verify_snapshot(const PullSnapshot& s, const Id128& tenant,
                                        const Id128& timeline);

}  // namespace wp::sk
