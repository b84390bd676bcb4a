// Durable WAL and control-file storage of one timeline: the daemon's
// implementation of the core's wp::AcceptorStorage.
//
// Directory DIR/<tenant>/<timeline>/ holds (docs/storage.md):
//   safekeeper.control        control file (control_file.h)
//   <24 hex digits>           complete WAL segments, named as PostgreSQL does
//   <24 hex digits>.partial   the segment being written (at most one)
//   wal_end_hint              flush hint (below)
//   *.tmp                     leftovers of an interrupted create/replace; removed on open
//
// Durability and crash safety:
//  * write_wal() pwrites at the LSN's offset in the segment; not durable.
//  * flush_wal() fdatasyncs every file written since the last flush (one
//    fdatasync per file: group commit), then renames completed segments
//    durably; flush_lsn() advances only after that.
//  * End of WAL after a crash is found by decoding records (CRC) forward
//    from a record boundary <= commit_lsn (ControlFileData::
//    wal_scan_start_lsn). A CRC cannot vouch for a record that is only
//    partly present, so when a flush ends anywhere other than at the end
//    of a complete record (PostgreSQL's flush pointer can stop at a page
//    boundary inside a record), flush_wal() also durably writes the flush LSN
//    to wal_end_hint (two checksummed 512-byte slots, alternating).
//    Recovered flush_lsn = max(decoded end, hint): never below an
//    acknowledged flush.
//  * open() first fsyncs every file of the directory (segments, control
//    file, hint), then the directory and its parent: a killed process
//    (SIGKILL, OOM) leaves written but unsynced bytes in the page cache,
//    and recovery must not acknowledge WAL that an OS crash could still
//    erase. A failed fsync fails open() (the timeline is then broken).
//  * Any failed write, fsync or file operation poisons the storage
//    (failure()): every later call fails with the first error. The one
//    exceptions are "out of space" (is_out_of_space) and "out of file
//    descriptors or memory" (is_out_of_resources) while creating or opening
//    the next segment or replacing the control file: nothing was changed
//    then (the temporary file is gone), so the call fails without poisoning
//    and out_of_space() / out_of_resources() says so;
//    settle_after_out_of_space() makes everything written durable so that
//    the caller can go on later.
//  * remove_wal_below(start): WAL retention. The control file first records
//    the new timeline start (durable), then the whole segments below it are
//    unlinked and the directory fsynced. A crash in between leaves segments
//    below the recorded start, which open() removes.
//  * New segments are created as NAME.partial.tmp, fsynced, renamed,
//    directory fsynced. A segment that continues a full one is reserved
//    whole (posix_fallocate) first; a timeline's first segment (or the one
//    its WAL starts in) is sparse, and blocks are reserved ahead of the
//    writes in doubling steps from 64 KiB, so an idle timeline's disk use
//    follows its WAL. Either way no WAL pwrite allocates blocks, and out of
//    space shows up in a step that wrote no WAL.
//  * Reserved blocks are "unwritten" to the file system: the first write
//    into one changes the file's block map, and the next fdatasync must
//    then write that metadata too (one more device write, or a journal
//    commit). So in a segment reserved whole, small WAL writes are kept
//    behind a zone of written zeros (initialize_ahead(): 256 KiB of zeros at
//    a time, written with the WAL and made durable by the same flush):
//    commits then overwrite written blocks, as in PostgreSQL's pg_wal. Zeros
//    beyond the write end keep the "every byte beyond the write end is
//    zero" rule.
//  * truncate_wal(end): first the hint is set durably to `end`, then the
//    bytes [end, old write end) are zeroed and synced, later segments are
//    unlinked and the directory synced. Beyond the write end every byte is
//    zero (start-up recovery re-establishes that), so a crash at any point
//    leaves either the old WAL or a prefix of it; stale records can never
//    reappear behind new WAL.
//
// File descriptors: only a timeline a proposer streams to holds any (the
// segment being written, the flush hint file); open() and create() leave
// none open, and release_files() closes them when streaming ends.
//
// Thread-safety: none. One WalStorage per timeline, used under the
// timeline's mutex. Counters (counters()) are atomics, readable any time.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "storage/control_file.h"
#include "storage/durable_file.h"
#include "storage/io_counters.h"
#include "walproposer/result.h"
#include "storage/wal_decoder.h"
#include "storage/wal_format.h"
#include "walproposer/acceptor.h"

namespace wp::sk {

constexpr const char kFlushHintFileName[] = "wal_end_hint";

struct WalStorageOptions {
    // true: create segments with posix_fallocate; false: write zeros.
    bool preallocate_with_fallocate = true;
    // A flush that ends inside a record acknowledges only up to the last
    // record end while the tail after it is shorter than this; a longer tail
    // is acknowledged through the durable flush hint (one more fdatasync).
    // Must stay well below the proposer's in-flight limit (16 MB).
    std::uint64_t hint_lag_bytes = 1024 * 1024;
};

// The content of a new wal_end_hint file whose one valid slot says `lsn`
// (sequence 1, in slot 1), as if the hint had been written once: for a
// timeline assembled from a copy (pull_timeline/pull.h) whose WAL up to `lsn`
// is durable.
std::string encode_flush_hint_file(Lsn lsn);

// What open() found; for the log and the status API.
struct RecoveryReport {
    Lsn scan_start = kInvalidLsn;
    Lsn decoded_end = kInvalidLsn;  // end of the last valid record
    Lsn hint_lsn = kInvalidLsn;     // 0 if none
    Lsn flush_lsn = kInvalidLsn;
    std::uint64_t records_decoded = 0;
    std::uint64_t bytes_read = 0;  // WAL file bytes read (decoding, tail check)
    std::string stop_reason;  // why decoding stopped
    std::vector<std::string> actions;  // cleanups performed
};

class WalStorage final : public AcceptorStorage {
public:
    // Creates DIR (durably) with an initial control file. Fails if DIR holds a
    // control file already.
    static Result<std::unique_ptr<WalStorage>> create(FileSystem& fs, const std::string& dir,
                                                      const ControlFileData& initial,
                                                      WalStorageOptions options = {});
    // Opens an existing timeline directory and recovers: reads the control
    // file (kCorrupt if it fails any check; nothing is modified then), makes
    // every file durable (fsync), finds the end of WAL (kCorrupt if the
    // control file's commit_lsn is above it, naming both LSNs; no WAL
    // is modified then), removes leftovers, zeroes the tail, fixes segment
    // names.
    static Result<std::unique_ptr<WalStorage>> open(FileSystem& fs, const std::string& dir,
                                                    WalStorageOptions options = {});

    // --- wp::AcceptorStorage ---
    wp::Status persist_state(const AcceptorDurableState& state) override;
    wp::Status write_wal(Lsn begin, const std::uint8_t* data, std::size_t size) override;
    wp::Status flush_wal() override;
    wp::Status truncate_wal(Lsn end) override;
    // The core's read of durable WAL [begin, end) (a vote's WAL tail).
    wp::Status read_wal(Lsn begin, Lsn end, std::vector<std::uint8_t>& out) override;
    Lsn flush_lsn() const override { return flush_lsn_; }

    // The PG timeline history content (from the greeting); persisted durably
    // right away if it differs from the stored one.
    Status set_pg_timeline_history(const std::string& content);

    // Reads durable WAL bytes [lsn, lsn + len) (only below flush_lsn()).
    // Returns the number of bytes read (short at flush_lsn()).
    Result<std::size_t> read_wal(Lsn lsn, std::uint8_t* buf, std::size_t len);

    // WAL retention: durably raises the timeline start to `new_start` (the
    // start of a segment, at most the durable commit_lsn and the durable
    // wal_scan_start_lsn, so start-up decoding still begins at a record
    // boundary it holds) and removes every segment below it. kInvalidInput
    // (nothing changed) if `new_start` breaks those rules; returns the bytes
    // removed. Any other failure poisons the storage.
    Result<std::uint64_t> remove_wal_below(Lsn new_start);
    // Bytes of WAL segment files held (segment count × segment size).
    std::uint64_t disk_bytes() const;

    // The last call failed only because the file system is full and changed
    // nothing (see the contract above); cleared by the next successful
    // write_wal / persist.
    bool out_of_space() const { return out_of_space_; }
    // The same for a lack of file descriptors or memory.
    bool out_of_resources() const { return out_of_resources_; }
    // After an out-of-space failure: fsyncs everything written so far and
    // makes flush_lsn() == write_lsn() (through the flush hint if the end is
    // inside a record), so a new Acceptor view starts consistent. A failure
    // poisons the storage.
    Status settle_after_out_of_space();
    // Successful control file writes since open() (a disk-full state ends
    // only after one: the control file can be written again).
    std::uint64_t control_writes() const { return control_writes_; }

    // Closes the open WAL segment and the flush hint file when nothing
    // written is waiting for a flush (returns false and keeps them
    // otherwise); the next write or hint update opens them again. Called
    // when no proposer streams to the timeline, so that an idle timeline
    // holds no file descriptor (reads open their segment per call).
    bool release_files();
    // Files kept open between calls (for tests and the status API).
    int open_file_count() const {
        return (open_file_ ? 1 : 0) + (hint_file_ ? 1 : 0) +
               static_cast<int>(completed_unsynced_.size());
    }

    Lsn write_lsn() const { return write_lsn_; }
    // The first failure of a write_wal, flush_wal, truncate_wal (other than
    // a refused request), persist_state or set_pg_timeline_history; ok if
    // none. Once set, every one of those calls and read_wal fail with it:
    // after a failed write or fsync the state of the files is unknown, so
    // the storage is never used again (the caller marks the timeline
    // broken; a restart recovers from what is on disk).
    const Status& failure() const { return failure_; }
    Lsn timeline_start_lsn() const { return timeline_start_; }
    const ControlFileData& control() const { return control_; }  // last persisted
    const RecoveryReport& recovery_report() const { return recovery_; }
    const std::string& directory() const { return dir_; }
    StorageCounters& counters() { return counters_; }
    // Name (with suffix) of every WAL segment file, in LSN order. For tests.
    std::vector<std::string> segment_file_names() const;

private:
    struct Segment {
        std::string base_name;  // 24 hex digits
        bool partial = false;
        std::string file_name() const { return partial ? base_name + ".partial" : base_name; }
    };

    WalStorage(FileSystem& fs, std::string dir, WalStorageOptions options);
    Status recover();
    Status sync_everything(const std::vector<std::string>& names);
    Status poison(Status s);  // records the first failure; returns s
    // poison() unless `s` is out of space or of resources (then
    // out_of_space_ / out_of_resources_ is set).
    Status poison_unless_out_of_space(Status s);
    Status remove_leftovers(std::vector<std::string>& names);
    Status scan_segments(const std::vector<std::string>& names);
    Status decode_forward(WalStreamDecoder& decoder, Lsn until);  // until == 0: to the end
    Status normalize_after_recovery();
    Status open_for_write(SegmentNumber segno, std::uint64_t first_offset);
    Status reserve_for_write(std::uint64_t end);
    // After a write_wal() of `size` bytes whose part in the open segment ends
    // at `end`: writes zeros over the reserved blocks just past it, if needed.
    Status initialize_ahead(std::uint64_t end, std::size_t size);
    Status do_flush();
    Status do_truncate(Lsn end);
    Result<Lsn> read_flush_hint();
    Status write_flush_hint(Lsn lsn);
    WalStreamDecoder::Options decoder_options() const;
    Lsn choose_scan_start(Lsn commit_lsn);
    std::string path_of(const std::string& name) const { return join_path(dir_, name); }
    std::uint32_t segment_size() const { return control_.acceptor.identity.wal_segment_size; }

    FileSystem& fs_;
    std::string dir_;
    WalStorageOptions options_;
    ControlFileData control_;  // last persisted
    std::map<SegmentNumber, Segment> segments_;
    RecoveryReport recovery_;
    StorageCounters counters_;

    Lsn timeline_start_ = kInvalidLsn;
    Lsn write_lsn_ = kInvalidLsn;
    Lsn flush_lsn_ = kInvalidLsn;
    Lsn hint_lsn_ = kInvalidLsn;  // last durable hint value

    // The segment being written and segments completed since the last flush.
    std::optional<SegmentNumber> open_segno_;
    std::unique_ptr<File> open_file_;
    bool open_file_dirty_ = false;
    // Blocks of the open segment reserved from allocation_base_ (where this
    // storage began writing in it) up to allocated_end_.
    std::uint64_t allocation_base_ = 0;
    std::uint64_t allocated_end_ = 0;
    // Blocks of the open segment below this offset have been written (WAL or
    // zeros) since it was opened, or were zero-filled at creation: a pwrite
    // there changes no block mapping. See initialize_ahead().
    std::uint64_t initialized_end_ = 0;
    std::vector<std::pair<SegmentNumber, std::unique_ptr<File>>> completed_unsynced_;

    // Follows the written WAL to know whether its end is a record end.
    std::optional<WalStreamDecoder> ingest_decoder_;
    // Durable record boundaries seen at flushes (ascending), candidates for
    // wal_scan_start_lsn.
    std::deque<Lsn> boundary_candidates_;

    std::unique_ptr<File> hint_file_;
    std::uint32_t hint_seq_ = 0;

    Status failure_;  // first failure (failure()); ok while usable
    bool out_of_space_ = false;
    bool out_of_resources_ = false;
    std::uint64_t control_writes_ = 0;
};

}  // namespace wp::sk
