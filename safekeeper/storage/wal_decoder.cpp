#include "storage/wal_decoder.h"

#include <algorithm>
#include <cstring>

#include "walproposer/byte_order.h"
#include "storage/crc32c.h"
#include "storage/wal_format.h"

namespace wp::sk {
WalPageHeader decode_page_header(const std::uint8_t* p, bool long_header) {
    WalPageHeader h;
    h.magic = get_le16(p + 0);
    h.info = get_le16(p + 2);
    h.tli = get_le32(p + 4);
    h.pageaddr = get_le64(p + 8);
    h.rem_len = get_le32(p + 16);
    h.is_long = long_header;
    if (long_header) {
        h.sysid = get_le64(p + 24);
        h.seg_size = get_le32(p + 32);
        h.xlog_blcksz = get_le32(p + 36);
    }
    return h;
}

WalRecordHeader decode_record_header(const std::uint8_t* p) {
    WalRecordHeader r;
    r.tot_len = get_le32(p + 0);
    r.xid = get_le32(p + 4);
    r.prev = get_le64(p + 8);
    r.info = p[16];
    r.rmid = p[17];
    r.crc = get_le32(p + 20);
    return r;
}

WalStreamDecoder::WalStreamDecoder(Options options, Lsn start)
    : opts_(options), start_(start), pos_(start), valid_end_(start) {
    if (start % kWalPageSize == 0) {
        state_ = State::kPageHeader;
        state_after_page_header_ = State::kSkipContinuation;
    } else {
        state_ = State::kBetweenRecords;
        if (start % 8 != 0) fail("start LSN " + format_lsn(start) + " is not MAXALIGNed");
    }
}

void WalStreamDecoder::fail(std::string why) {
    if (failed_) return;
    failed_ = true;
    failure_ = std::move(why);
}

bool WalStreamDecoder::at_record_boundary() const {
    if (failed_) return false;
    State s = state_ == State::kPageHeader ? state_after_page_header_ : state_;
    return s == State::kBetweenRecords || s == State::kSwitchPadding;
}

std::size_t WalStreamDecoder::bytes_to_page_end() const {
    return kWalPageSize - static_cast<std::size_t>(pos_ % kWalPageSize);
}

bool WalStreamDecoder::feed(const std::uint8_t* data, std::size_t len) {
    while (len > 0 && !failed_) {
        if (state_ != State::kPageHeader && pos_ % kWalPageSize == 0 &&
            !(state_ == State::kSwitchPadding && pos_ % opts_.segment_size != 0)) {
            state_after_page_header_ =
                state_ == State::kSwitchPadding ? State::kBetweenRecords : state_;
            state_ = State::kPageHeader;
            page_got_ = 0;
        }
        std::size_t used = 0;
        switch (state_) {
            case State::kPageHeader: used = consume_page_header(data, len); break;
            case State::kSkipContinuation: {
                used = static_cast<std::size_t>(
                    std::min<std::uint64_t>({len, skip_remaining_, bytes_to_page_end()}));
                skip_remaining_ -= used;
                pos_ += used;
                if (skip_remaining_ == 0) state_ = State::kBetweenRecords;
                break;
            }
            case State::kBetweenRecords: used = consume_between_records(data, len); break;
            case State::kRecordHeader: used = consume_record_header(data, len); break;
            case State::kRecordBody: used = consume_record_body(data, len); break;
            case State::kSwitchPadding: {
                const std::uint64_t to_seg_end = opts_.segment_size - pos_ % opts_.segment_size;
                used = static_cast<std::size_t>(std::min<std::uint64_t>(len, to_seg_end));
                pos_ += used;
                break;
            }
        }
        data += used;
        len -= used;
    }
    return !failed_;
}

std::size_t WalStreamDecoder::consume_page_header(const std::uint8_t* data, std::size_t len) {
    const Lsn page_lsn = pos_ - page_got_;
    std::uint32_t need = kShortPageHeaderSize;
    if (page_got_ >= kShortPageHeaderSize && (get_le16(page_buf_ + 2) & kXlpLongHeader))
        need = kLongPageHeaderSize;
    std::size_t n = std::min<std::size_t>(len, need - page_got_);
    std::memcpy(page_buf_ + page_got_, data, n);
    page_got_ += static_cast<std::uint32_t>(n);
    pos_ += n;
    if (page_got_ < need) return n;
    if (need == kShortPageHeaderSize && (get_le16(page_buf_ + 2) & kXlpLongHeader))
        return n;  // collect the rest

    const WalPageHeader h = decode_page_header(page_buf_, need == kLongPageHeaderSize);
    // Built only for an error: this runs for every page of every stream.
    const auto where = [page_lsn] { return " at page " + format_lsn(page_lsn); };
    if (h.magic != kWalPageMagic) {
        if (h.magic == 0 && h.pageaddr == 0)
            fail("end of WAL: zeroed page" + where());
        else
            fail("invalid page magic " + std::to_string(h.magic) + where());
        return n;
    }
    if (h.info & ~kXlpAllFlags) { fail("invalid page info flags" + where()); return n; }
    if (h.pageaddr != page_lsn) {
        fail("unexpected page address " + format_lsn(h.pageaddr) + where());
        return n;
    }
    if (h.tli == 0) { fail("zero timeline in page header" + where()); return n; }
    const bool segment_start = page_lsn % opts_.segment_size == 0;
    if (segment_start != h.is_long) {
        fail(std::string(segment_start ? "missing" : "unexpected") + " long page header" + where());
        return n;
    }
    if (h.is_long) {
        if (h.seg_size != opts_.segment_size || h.xlog_blcksz != kWalPageSize) {
            fail("page header segment/block size mismatch" + where());
            return n;
        }
        if (opts_.system_id != 0 && h.sysid != opts_.system_id) {
            fail("page header system id mismatch" + where());
            return n;
        }
    }

    const bool cont = h.info & kXlpFirstIsContRecord;
    const bool overwrite = h.info & kXlpFirstIsOverwriteContRecord;
    State next = state_after_page_header_;
    switch (state_after_page_header_) {
        case State::kSkipContinuation:
            if (first_page_) {
                if (cont && h.rem_len > 0) {
                    skip_remaining_ = h.rem_len;
                    next = State::kSkipContinuation;
                } else {
                    next = State::kBetweenRecords;
                }
            } else if (overwrite) {
                next = State::kBetweenRecords;
            } else if (!cont || h.rem_len != skip_remaining_) {
                fail("continuation record mismatch" + where());
                return n;
            }
            break;
        case State::kRecordHeader:
        case State::kRecordBody: {
            if (overwrite) {  // the record was aborted by a crash of the primary
                record_start_ = kInvalidLsn;
                rec_hdr_got_ = 0;
                next = State::kBetweenRecords;
                break;
            }
            const std::uint64_t remaining = state_after_page_header_ == State::kRecordHeader
                                                ? rec_.tot_len - rec_hdr_got_
                                                : rec_remaining_;
            if (!cont || h.rem_len != remaining) {
                fail("continuation record mismatch" + where());
                return n;
            }
            break;
        }
        default:
            if (cont) {
                fail("unexpected continuation record" + where());
                return n;
            }
            next = State::kBetweenRecords;
            break;
    }
    first_page_ = false;
    state_ = next;
    page_got_ = 0;
    return n;
}

std::size_t WalStreamDecoder::consume_between_records(const std::uint8_t*, std::size_t len) {
    if (pos_ % 8 != 0) {
        std::size_t n = std::min<std::size_t>(len, 8 - pos_ % 8);
        pos_ += n;
        return n;
    }
    record_start_ = pos_;
    rec_hdr_got_ = 0;
    state_ = State::kRecordHeader;
    return 0;
}

std::size_t WalStreamDecoder::consume_record_header(const std::uint8_t* data, std::size_t len) {
    std::size_t n = std::min<std::size_t>({len, kRecordHeaderSize - rec_hdr_got_, bytes_to_page_end()});
    const bool had_len = rec_hdr_got_ >= 4;
    std::memcpy(rec_buf_ + rec_hdr_got_, data, n);
    rec_hdr_got_ += static_cast<std::uint32_t>(n);
    pos_ += n;
    if (!had_len && rec_hdr_got_ >= 4) {
        rec_.tot_len = get_le32(rec_buf_);
        // Built only for an error: this runs for every record.
        const auto where = [this] { return " at " + format_lsn(record_start_); };
        if (rec_.tot_len == 0) { fail("end of WAL: zero record length" + where()); return n; }
        if (rec_.tot_len < kRecordHeaderSize || rec_.tot_len > kMaxRecordSize) {
            fail("invalid record length " + std::to_string(rec_.tot_len) + where());
            return n;
        }
    }
    if (rec_hdr_got_ < kRecordHeaderSize) return n;
    rec_ = decode_record_header(rec_buf_);
    if (prev_known_ && rec_.prev != last_record_start_) {
        fail("record at " + format_lsn(record_start_) + " has xl_prev " + format_lsn(rec_.prev) +
             ", expected " + format_lsn(last_record_start_));
        return n;
    }
    crc_ = kCrc32cInit;
    rec_remaining_ = rec_.tot_len - kRecordHeaderSize;
    state_ = State::kRecordBody;
    if (rec_remaining_ == 0) finish_record();
    return n;
}

std::size_t WalStreamDecoder::consume_record_body(const std::uint8_t* data, std::size_t len) {
    std::size_t n = static_cast<std::size_t>(
        std::min<std::uint64_t>({len, rec_remaining_, bytes_to_page_end()}));
    crc_ = crc32c_update(crc_, data, n);
    rec_remaining_ -= n;
    pos_ += n;
    if (rec_remaining_ == 0) finish_record();
    return n;
}

void WalStreamDecoder::finish_record() {
    std::uint32_t crc = crc32c_finish(crc32c_update(crc_, rec_buf_, kRecordCrcOffset));
    if (crc != rec_.crc) {
        fail("record CRC mismatch at " + format_lsn(record_start_));
        return;
    }
    ++records_;
    last_record_start_ = record_start_;
    prev_known_ = true;
    record_start_ = kInvalidLsn;
    rec_hdr_got_ = 0;
    if (rec_.rmid == kRmXlogId && (rec_.info & ~kXlrInfoMask) == kXlogSwitch &&
        pos_ % opts_.segment_size != 0) {
        valid_end_ = segment_start(segment_of(pos_, opts_.segment_size) + 1, opts_.segment_size);
        state_ = State::kSwitchPadding;
    } else {
        valid_end_ = maxalign(pos_);
        state_ = State::kBetweenRecords;
    }
}

}  // namespace wp::sk
