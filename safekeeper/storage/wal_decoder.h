// Streaming decoder of PostgreSQL 15 WAL: validates page headers
// (XLogPageHeaderData / XLogLongPageHeaderData) and records (XLogRecord
// header + CRC-32C over the record), without any PostgreSQL header. Layouts
// are documented in docs/storage.md.
//
// Used for two things:
//  * on start-up, to find the end of valid WAL (the end of the last complete
//    record whose CRC checks, decoding forward from a known-good point);
//  * while ingesting, to know whether the durable end of WAL is at a record
//    boundary (see WalStorage: a flush that ends inside a record also
//    persists a flush hint, because a CRC cannot vouch for half a record).
//
// Contract: a WalStreamDecoder is a value (copyable); it is fed the WAL
// bytes in LSN order, in chunks of any size. Once it meets something that is
// not valid WAL (zeros past the end, a bad CRC, a wrong page address, ...) it
// stops: failed() is true, failure() says why, and further input is ignored.
// Not thread-safe; owned by one user.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "walproposer/lsn.h"

namespace wp::sk {

struct WalPageHeader {
    std::uint16_t magic = 0;
    std::uint16_t info = 0;
    std::uint32_t tli = 0;
    std::uint64_t pageaddr = 0;
    std::uint32_t rem_len = 0;
    // Long header only (first page of a segment):
    bool is_long = false;
    std::uint64_t sysid = 0;
    std::uint32_t seg_size = 0;
    std::uint32_t xlog_blcksz = 0;
};

struct WalRecordHeader {
    std::uint32_t tot_len = 0;
    std::uint32_t xid = 0;
    std::uint64_t prev = 0;
    std::uint8_t info = 0;
    std::uint8_t rmid = 0;
    std::uint32_t crc = 0;
};

// Little-endian decoding of the fixed layouts (x86-64 PostgreSQL). `p` must
// hold kShortPageHeaderSize (or kLongPageHeaderSize if the long flag is set)
// / kRecordHeaderSize bytes.
WalPageHeader decode_page_header(const std::uint8_t* p, bool long_header);
WalRecordHeader decode_record_header(const std::uint8_t* p);

class WalStreamDecoder {
public:
    struct Options {
        std::uint32_t segment_size = 16u << 20;
        std::uint64_t system_id = 0;  // 0: do not check xlp_sysid
    };

    // Starts decoding at `start`. If `start` is on a page boundary, a page
    // header is expected there and a continuation record at the top of that
    // page is skipped unverified (it started before `start`). Otherwise
    // `start` must be the start of a record (MAXALIGNed).
    WalStreamDecoder(Options options, Lsn start);

    // Feeds the bytes that follow position(). Returns !failed().
    bool feed(const std::uint8_t* data, std::size_t len);

    Lsn start() const { return start_; }
    // The LSN of the next byte to feed.
    Lsn position() const { return pos_; }
    // MAXALIGNed end of the last complete valid record (the next segment's
    // start after an XLOG_SWITCH record); start() if there is none yet.
    Lsn valid_end() const { return valid_end_; }
    // Start LSN of the last complete valid record (kInvalidLsn if none).
    Lsn last_record_start() const { return last_record_start_; }
    // True when every byte fed so far belongs to complete records (or
    // padding/page headers between them), i.e. position() is a place where
    // PostgreSQL's flush pointer may stand at a record end.
    bool at_record_boundary() const;
    // True while inside a record (or the skipped continuation at the start).
    bool in_record() const { return !at_record_boundary(); }
    // Start LSN of the record being assembled (when in_record()).
    Lsn partial_record_start() const { return record_start_; }
    bool failed() const { return failed_; }
    const std::string& failure() const { return failure_; }
    std::uint64_t records_decoded() const { return records_; }

private:
    enum class State {
        kPageHeader,    // collecting a page header at a page boundary
        kSkipContinuation,  // skipping the continuation of a record begun before start()
        kBetweenRecords,    // padding to MAXALIGN, or the next record header starts here
        kRecordHeader,  // collecting the 24-byte record header
        kRecordBody,    // consuming record data, accumulating the CRC
        kSwitchPadding, // after XLOG_SWITCH: the rest of the segment is ignored
    };

    void fail(std::string why);
    // Each consumes from data[0..len) and returns the number of bytes used.
    std::size_t consume_page_header(const std::uint8_t* data, std::size_t len);
    std::size_t consume_between_records(const std::uint8_t* data, std::size_t len);
    std::size_t consume_record_header(const std::uint8_t* data, std::size_t len);
    std::size_t consume_record_body(const std::uint8_t* data, std::size_t len);
    void finish_record();
    std::size_t bytes_to_page_end() const;

    Options opts_;
    Lsn start_;
    Lsn pos_;
    Lsn valid_end_;
    Lsn last_record_start_ = kInvalidLsn;
    State state_;
    State state_after_page_header_ = State::kBetweenRecords;
    bool failed_ = false;
    std::string failure_;
    std::uint64_t records_ = 0;

    // Page header being collected.
    std::uint8_t page_buf_[40] = {};
    std::uint32_t page_got_ = 0;
    bool first_page_ = true;

    // Record being assembled.
    Lsn record_start_ = kInvalidLsn;
    std::uint8_t rec_buf_[24] = {};
    std::uint32_t rec_hdr_got_ = 0;
    WalRecordHeader rec_{};
    std::uint64_t rec_remaining_ = 0;  // record bytes (after the header) still to come
    std::uint64_t skip_remaining_ = 0; // continuation bytes still to skip (kSkipContinuation)
    std::uint32_t crc_ = 0;
    bool prev_known_ = false;
};

}  // namespace wp::sk
