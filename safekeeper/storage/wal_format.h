// PostgreSQL 15 WAL layout constants and segment naming, without PG headers.
// The byte layouts are documented in docs/storage.md.
//
// Contract: pure functions and constants; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "walproposer/lsn.h"

namespace wp::sk {

constexpr std::uint32_t kWalPageSize = 8192;          // XLOG_BLCKSZ
constexpr std::uint16_t kWalPageMagic = 0xD110;       // XLOG_PAGE_MAGIC of PG15
constexpr std::uint32_t kShortPageHeaderSize = 24;    // SizeOfXLogShortPHD
constexpr std::uint32_t kLongPageHeaderSize = 40;     // SizeOfXLogLongPHD
constexpr std::uint32_t kRecordHeaderSize = 24;       // SizeOfXLogRecord
constexpr std::uint32_t kRecordCrcOffset = 20;        // offsetof(XLogRecord, xl_crc)
constexpr std::uint32_t kMaxRecordSize = 0x40000000u + 0x100000u;  // sanity cap (1 GiB + 1 MiB)

// xlp_info flags
constexpr std::uint16_t kXlpFirstIsContRecord = 0x0001;
constexpr std::uint16_t kXlpLongHeader = 0x0002;
constexpr std::uint16_t kXlpBkpRemovable = 0x0004;
constexpr std::uint16_t kXlpFirstIsOverwriteContRecord = 0x0008;
constexpr std::uint16_t kXlpAllFlags = 0x000F;

constexpr std::uint8_t kRmXlogId = 0;       // RM_XLOG_ID
constexpr std::uint8_t kXlogSwitch = 0x40;  // XLOG_SWITCH
constexpr std::uint8_t kXlrInfoMask = 0x0F; // XLR_INFO_MASK

constexpr std::uint64_t maxalign(std::uint64_t v) { return (v + 7) & ~std::uint64_t{7}; }

// A power of two between 1 MB and 1 GB, as initdb --wal-segsize allows.
bool is_valid_segment_size(std::uint64_t segment_size);

using SegmentNumber = std::uint64_t;  // XLogSegNo

inline SegmentNumber segment_of(Lsn lsn, std::uint32_t segment_size) { return lsn / segment_size; }
inline Lsn segment_start(SegmentNumber segno, std::uint32_t segment_size) {
    return segno * static_cast<Lsn>(segment_size);
}
inline std::uint64_t offset_in_segment(Lsn lsn, std::uint32_t segment_size) {
    return lsn % segment_size;
}

// XLogFileName: "%08X%08X%08X" of timeline, segno / segments-per-xlogid,
// segno % segments-per-xlogid (24 upper-case hex digits).
std::string wal_segment_file_name(std::uint32_t pg_timeline, SegmentNumber segno,
                                  std::uint32_t segment_size);

struct ParsedSegmentName {
    std::uint32_t pg_timeline = 0;
    SegmentNumber segno = 0;
    bool partial = false;  // had the ".partial" suffix
};
// Parses a name produced by wal_segment_file_name, optionally followed by
// ".partial". Anything else (lower case, wrong length, ".tmp", ...) -> nullopt.
std::optional<ParsedSegmentName> parse_wal_segment_file_name(std::string_view name,
                                                             std::uint32_t segment_size);

}  // namespace wp::sk
