#include "support/wal_generator.h"

#include <cstring>

#include "walproposer/byte_order.h"
#include "storage/crc32c.h"
#include "storage/wal_format.h"

namespace wp::sk {

WalGenerator::WalGenerator(std::uint64_t system_id, std::uint32_t segment_size, std::uint32_t pg_timeline,
                           Lsn start, Lsn prev_record)
    : system_id_(system_id), segment_size_(segment_size), tli_(pg_timeline), pos_(start),
      last_record_(prev_record) {}

// Writes `len` record bytes at pos_, inserting page headers at page starts;
// `rem` is the number of record bytes still to come (for xlp_rem_len).
void WalGenerator::put(std::vector<std::uint8_t>& out, const std::uint8_t* data, std::size_t len,
                       std::uint32_t& rem) {
    while (len > 0) {
        if (pos_ % kWalPageSize == 0) {
            const bool is_long = pos_ % segment_size_ == 0;
            std::string h_bytes;
            ByteWriter h(h_bytes);
            h.le16(kWalPageMagic);
            std::uint16_t info = is_long ? kXlpLongHeader : 0;
            // A page that starts inside a record carries the continuation flag.
            if (in_record_continuation_) info |= kXlpFirstIsContRecord;
            h.le16(info);
            h.le32(tli_);
            h.le64(pos_);
            h.le32(in_record_continuation_ ? rem : 0);
            h.le32(0);  // padding
            if (is_long) {
                h.le64(system_id_);
                h.le32(segment_size_);
                h.le32(kWalPageSize);
            }
            out.insert(out.end(), h_bytes.begin(), h_bytes.end());
            pos_ += h_bytes.size();
        }
        const std::size_t room = kWalPageSize - pos_ % kWalPageSize;
        const std::size_t n = std::min(room, len);
        out.insert(out.end(), data, data + n);
        pos_ += n;
        data += n;
        len -= n;
        rem -= static_cast<std::uint32_t>(n);
        in_record_continuation_ = rem > 0;
    }
}

std::vector<std::uint8_t> WalGenerator::append_record(std::uint32_t total_len) {
    if (total_len < kRecordHeaderSize) total_len = kRecordHeaderSize;
    std::vector<std::uint8_t> payload(total_len - kRecordHeaderSize);
    ++counter_;
    for (std::size_t i = 0; i < payload.size(); ++i)
        payload[i] = static_cast<std::uint8_t>((counter_ * 131 + i * 7) & 0xFF);
    std::vector<std::uint8_t> out;
    // Position the record: pad to MAXALIGN (never crosses a page boundary).
    while (pos_ % 8 != 0) {
        out.push_back(0);
        ++pos_;
    }
    // A record never starts exactly at a page start: the page header goes first.
    Lsn record_start = pos_;
    if (pos_ % kWalPageSize == 0)
        record_start = pos_ + (pos_ % segment_size_ == 0 ? kLongPageHeaderSize : kShortPageHeaderSize);
    std::string hdr_bytes;
    ByteWriter hdr(hdr_bytes);
    hdr.le32(total_len);
    hdr.le32(0);             // xl_xid
    hdr.le64(last_record_);  // xl_prev
    hdr.u8(0);              // xl_info
    hdr.u8(21);             // xl_rmid: RM_LOGICALMSG_ID
    hdr.u8(0);
    hdr.u8(0);
    std::uint32_t crc = crc32c_update(kCrc32cInit, payload.data(), payload.size());
    crc = crc32c_finish(crc32c_update(crc, hdr_bytes.data(), kRecordCrcOffset));
    hdr.le32(crc);
    std::uint32_t rem = total_len;
    in_record_continuation_ = false;
    put(out, reinterpret_cast<const std::uint8_t*>(hdr_bytes.data()), kRecordHeaderSize, rem);
    put(out, payload.data(), payload.size(), rem);
    last_record_ = record_start;
    while (pos_ % 8 != 0) {
        out.push_back(0);
        ++pos_;
    }
    return out;
}

std::vector<std::uint8_t> WalGenerator::append_bytes(std::size_t bytes, std::uint32_t record_len) {
    std::vector<std::uint8_t> out;
    while (out.size() < bytes) {
        auto r = append_record(record_len);
        out.insert(out.end(), r.begin(), r.end());
    }
    return out;
}

}  // namespace wp::sk
