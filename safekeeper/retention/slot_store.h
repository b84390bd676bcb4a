// Physical replication slots of one timeline, persisted on the safekeeper.
//
// A slot (CREATE_REPLICATION_SLOT name PHYSICAL) keeps the WAL its consumer
// still needs: its restart LSN takes part in the timeline's removal horizon
// (retention/horizon.h). The restart LSN follows the flush position the
// consumer reports (standby status update) and is persisted at most about
// once a second and at clean shutdown; after a crash it may come back a
// little older, which only keeps more WAL.
//
// File DIR/<tenant>/<timeline>/replication_slots (format in docs/storage.md),
// always replaced with write_file_atomically (tmp, fdatasync, rename,
// directory fsync): after a crash it is the old or the new content. A
// missing file means "no slots".
//
// Thread-safety: every member is thread-safe (one internal mutex; file IO
// is done under it, so two persists never interleave). Never takes the
// timeline's mutex.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "storage/durable_file.h"
#include "walproposer/lsn.h"
#include "walproposer/result.h"

namespace wp::sk {

constexpr const char kSlotFileName[] = "replication_slots";
constexpr std::size_t kMaxSlotsPerTimeline = 16;
constexpr std::size_t kMaxSlotNameLength = 63;  // PostgreSQL's NAMEDATALEN - 1

struct SlotData {
    std::string name;
    Lsn restart_lsn = kInvalidLsn;     // 0: no WAL reserved yet
    bool invalidated = false;          // cut off by --max-wal-retention
    Lsn invalidated_at = kInvalidLsn;  // the horizon that cut it off
};

// PostgreSQL's rule: 1..63 characters from [a-z0-9_]. kInvalidInput with a
// message saying what is wrong.
Status validate_slot_name(const std::string& name);

// Byte layout of the slot file; exposed for tests.
std::string encode_slot_file(const std::vector<SlotData>& slots);
Result<std::vector<SlotData>> decode_slot_file(const std::string& bytes);

enum class SlotError { kNone, kExists, kNotFound, kTooMany, kBadName, kIo };

class SlotStore {
  public:
    // Reads DIR/replication_slots (none: empty). kCorrupt if it fails a check.
    static Result<std::unique_ptr<SlotStore>> load(FileSystem& fs, const std::string& dir);

    // Creates a slot durably (the file is written before this returns).
    // `restart_lsn` 0 reserves nothing until its first START_REPLICATION.
    Status create(const std::string& name, Lsn restart_lsn, SlotError& why);
    // Removes a slot durably.
    Status drop(const std::string& name, SlotError& why);
    std::optional<SlotData> find(const std::string& name) const;
    std::vector<SlotData> list() const;

    // Raises the restart LSN in memory (never lowers it; ignored for an
    // unknown or invalidated slot). Persisted by persist_if_due().
    void advance(const std::string& name, Lsn restart_lsn);
    // Marks a slot invalidated (in memory; persisted by persist_if_due).
    void invalidate(const std::string& name, Lsn horizon);
    // Writes the file if something changed and a second passed since the
    // last write (or `force`). An error leaves the old file in place; the
    // in-memory state stays dirty and is retried at the next call.
    Status persist_if_due(bool force);

  private:
    SlotStore(FileSystem& fs, std::string dir) : fs_(fs), dir_(std::move(dir)) {}
    Status write_locked();
    SlotData* find_locked(const std::string& name);

    FileSystem& fs_;
    std::string dir_;
    mutable std::mutex mutex_;
    std::vector<SlotData> slots_;
    bool dirty_ = false;
    std::chrono::steady_clock::time_point last_write_{};
};

}  // namespace wp::sk
