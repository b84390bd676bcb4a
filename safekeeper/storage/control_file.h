// The per-timeline control file: the acceptor's durable state.
//
// On-disk format (little-endian; full description in docs/storage.md):
//   u32 magic 0x4C544B53 ("SKTL"), u32 format_version (2), u32 payload_len,
//   payload, u32 CRC-32C (pg_crc32c) of everything before it.
// Version 2 appends u32 min_pg_timeline (the failover fence) to the payload;
// version 3 appends the membership configuration (wire layout of
// put_configuration, walproposer/configuration.h). Versions 1 and 2 are
// still read (fence 0 / no configuration); encode always writes version 3,
// so the next persist upgrades the file.
// The file is replaced atomically (write_file_atomically: temp, fsync,
// rename, fsync dir), so it is always either the old or the new state.
//
// Contract: encode/decode are pure; decode rejects a short file, bad magic,
// unknown version (anything but 1 to 3), length mismatch, bad CRC and
// malformed payload with a
// kCorrupt Status naming the problem. load/store go through a FileSystem;
// store is durable on return. Thread-safety: none needed (values).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "storage/durable_file.h"
#include "walproposer/result.h"
#include "walproposer/acceptor.h"

namespace wp::sk {

constexpr std::uint32_t kControlFileMagic = 0x4C544B53;  // "SKTL" read as little-endian bytes
constexpr std::uint32_t kControlFileVersion = 3;
// The oldest format version decode_control_file() still reads.
constexpr std::uint32_t kControlFileMinVersion = 1;
constexpr const char kControlFileName[] = "safekeeper.control";

struct ControlFileData {
    AcceptorDurableState acceptor;      // what the consensus core persists
    std::string pg_timeline_history;    // content of the PG .history file (from the greeting)
    // A record boundary <= commit_lsn from which start-up decoding of WAL may
    // begin (0: start at acceptor.timeline_start_lsn). Maintained by WalStorage.
    Lsn wal_scan_start_lsn = kInvalidLsn;
    bool operator==(const ControlFileData& o) const {
        return acceptor == o.acceptor && pg_timeline_history == o.pg_timeline_history &&
               wal_scan_start_lsn == o.wal_scan_start_lsn;
    }
};

std::string encode_control_file(const ControlFileData& data);
Result<ControlFileData> decode_control_file(const std::string& bytes);

// Reads DIR/safekeeper.control. kNotFound if it does not exist.
Result<ControlFileData> load_control_file(FileSystem& fs, const std::string& timeline_dir);
// Atomically and durably replaces DIR/safekeeper.control.
Status store_control_file(FileSystem& fs, const std::string& timeline_dir, const ControlFileData& data);

// Tombstone of a deleted timeline: TENANT_DIR/<timeline hex>.tombstone.
// Holds the highest term the timeline had promised when it was deleted, so
// that a timeline created again under the same id starts at that term and
// can never grant a vote in a term it may already have voted in, and the
// failover fence (min_pg_timeline) it held, so that deleting and recreating
// a member never lifts a fence from it, and the membership configuration it
// held, so that it never answers a proposer of an older configuration.
// Format (little-endian; docs/storage.md): u32 magic 0x53544B53 ("SKTS"),
// u32 version, 16-byte timeline id, u64 term, [version >= 2: u32
// min_pg_timeline], [version 3: the configuration, encoded as in the control
// file], u32 CRC-32C of the bytes before it. Versions 1 (36 bytes, no fence)
// and 2 (40 bytes, no configuration) are still read; version 3 is written.
constexpr std::uint32_t kTombstoneMagic = 0x53544B53;  // "SKTS" read as little-endian bytes
constexpr std::uint32_t kTombstoneVersion = 3;
constexpr const char kTombstoneSuffix[] = ".tombstone";

struct Tombstone {
    Term term = 0;
    std::uint32_t min_pg_timeline = 0;
    Configuration configuration;  // generation 0: none
};

std::string encode_tombstone(const Id128& timeline_id, const Tombstone& tombstone);
// kCorrupt on any mismatch (size, magic, version, CRC, another timeline's id).
Result<Tombstone> decode_tombstone(const std::string& bytes, const Id128& timeline_id);
// The tombstone at `path`; std::nullopt if it does not exist; kCorrupt if bad.
Result<std::optional<Tombstone>> load_tombstone(FileSystem& fs, const std::string& path,
                                                const Id128& timeline_id);
// Atomically and durably replaces `path` (file and directory fsynced).
Status store_tombstone(FileSystem& fs, const std::string& path, const Id128& timeline_id,
                       const Tombstone& tombstone);

}  // namespace wp::sk
