// Generates valid PostgreSQL 15 WAL (page headers, long headers at segment
// starts, records with xl_prev chains and CRC-32C) for tests and the ingest
// benchmark. Records use rmid 21 (RM_LOGICALMSG_ID) with an opaque payload;
// only the framing matters to the safekeeper.
//
// Contract: a value; not thread-safe. Starts at a segment or page start
// (nothing continues into the first page) or at a record boundary that
// `prev_record` describes.
#pragma once

#include <cstdint>
#include <vector>

#include "walproposer/lsn.h"

namespace wp::sk {

class WalGenerator {
public:
    WalGenerator(std::uint64_t system_id, std::uint32_t segment_size, std::uint32_t pg_timeline, Lsn start,
                 Lsn prev_record = kInvalidLsn);

    // Appends one record whose total length (header + payload) is
    // `total_len` (>= 24), plus page headers and alignment padding. Returns
    // the bytes from the previous position() to the new one, which is the
    // MAXALIGNed end of the record.
    std::vector<std::uint8_t> append_record(std::uint32_t total_len);
    // Appends records until at least `bytes` more bytes were produced.
    std::vector<std::uint8_t> append_bytes(std::size_t bytes, std::uint32_t record_len = 8000);

    Lsn position() const { return pos_; }
    Lsn last_record_start() const { return last_record_; }

private:
    void put(std::vector<std::uint8_t>& out, const std::uint8_t* data, std::size_t len, std::uint32_t& rem);

    std::uint64_t system_id_;
    std::uint32_t segment_size_;
    std::uint32_t tli_;
    Lsn pos_;
    Lsn last_record_;
    std::uint64_t counter_ = 0;
    bool in_record_continuation_ = false;
};

}  // namespace wp::sk
