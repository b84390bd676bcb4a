#include "storage/wal_storage.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "walproposer/byte_order.h"
#include "storage/crc32c.h"

namespace wp::sk {
namespace {

constexpr std::uint32_t kHintMagic = 0x54484B53;  // "SKHT"
constexpr std::size_t kHintSlotSize = 512;
constexpr std::size_t kHintRecordSize = 20;  // magic, seq, lsn, crc
constexpr std::size_t kMaxBoundaryCandidates = 4096;

// One hint slot's record: magic, seq, lsn, CRC-32C of the 16 bytes before it.
std::string encode_hint_record(std::uint32_t seq, Lsn lsn) {
    std::string bytes;
    ByteWriter w(bytes);
    w.le32(kHintMagic);
    w.le32(seq);
    w.le64(lsn);
    w.le32(wp_crc32c(bytes.data(), 16));
    return bytes;
}

}  // namespace

std::string encode_flush_hint_file(Lsn lsn) {
    std::string file(2 * kHintSlotSize, '\0');
    const std::string record = encode_hint_record(1, lsn);
    file.replace(kHintSlotSize, record.size(), record);
    return file;
}

WalStorage::WalStorage(FileSystem& fs, std::string dir, WalStorageOptions options)
    : fs_(fs), dir_(std::move(dir)), options_(options) {}

Result<std::unique_ptr<WalStorage>> WalStorage::create(FileSystem& fs, const std::string& dir,
                                                       const ControlFileData& initial,
                                                       WalStorageOptions options) {
    if (fs.exists(join_path(dir, kControlFileName)))
        return Status::invalid("timeline directory " + dir + " already has a control file");
    WP_RETURN_IF_ERROR(make_directory_durably(fs, parent_directory(dir)));
    WP_RETURN_IF_ERROR(make_directory_durably(fs, dir));
    if (!fs.exists(join_path(dir, kFlushHintFileName)))
        WP_RETURN_IF_ERROR(create_zero_filled_file(fs, join_path(dir, kFlushHintFileName),
                                                   2 * kHintSlotSize, ZeroFill::kWriteZeros));
    WP_RETURN_IF_ERROR(store_control_file(fs, dir, initial));
    std::unique_ptr<WalStorage> s(new WalStorage(fs, dir, options));
    s->control_ = initial;
    s->timeline_start_ = initial.acceptor.timeline_start_lsn;
    auto hint = s->read_flush_hint();
    if (!hint) return hint.status();
    return s;
}

Result<std::unique_ptr<WalStorage>> WalStorage::open(FileSystem& fs, const std::string& dir,
                                                     WalStorageOptions options) {
    std::unique_ptr<WalStorage> s(new WalStorage(fs, dir, options));
    WP_RETURN_IF_ERROR(s->recover());
    return s;
}

WalStreamDecoder::Options WalStorage::decoder_options() const {
    WalStreamDecoder::Options o;
    o.segment_size = segment_size();
    o.system_id = control_.acceptor.identity.system_id;
    return o;
}

// Recovery (recover() and its steps) is in storage/wal_storage_recovery.cpp.

// --------------------------------------------------------------- flush hint

Result<Lsn> WalStorage::read_flush_hint() {
    const std::string path = path_of(kFlushHintFileName);
    if (!fs_.exists(path))
        WP_RETURN_IF_ERROR(create_zero_filled_file(fs_, path, 2 * kHintSlotSize, ZeroFill::kWriteZeros));
    auto f = fs_.open(path, OpenMode::kReadOnly);
    if (!f) return f.status();
    char buf[2 * kHintSlotSize] = {};
    auto n = (*f)->pread_upto(buf, sizeof buf, 0);
    if (!n) return n.status();
    Lsn best = kInvalidLsn;
    hint_seq_ = 0;
    for (std::size_t slot = 0; slot < 2; ++slot) {
        if (*n < slot * kHintSlotSize + kHintRecordSize) continue;
        const char* p = buf + slot * kHintSlotSize;
        ByteReader r(p, kHintRecordSize);
        std::uint32_t magic = 0, seq = 0, crc = 0;
        std::uint64_t lsn = 0;
        (void)(r.le32(magic) && r.le32(seq) && r.le64(lsn) && r.le32(crc));
        if (magic != kHintMagic || crc != wp_crc32c(p, 16)) continue;
        if (seq >= hint_seq_) {
            hint_seq_ = seq;
            best = lsn;
        }
    }
    return best;
}

Status WalStorage::write_flush_hint(Lsn lsn) {
    const std::uint32_t seq = hint_seq_ + 1;
    const std::string w_bytes = encode_hint_record(seq, lsn);
    if (!hint_file_) {
        auto f = fs_.open(path_of(kFlushHintFileName), OpenMode::kReadWrite);
        if (!f) return f.status();
        hint_file_ = std::move(*f);
    }
    WP_RETURN_IF_ERROR(
        hint_file_->pwrite_all(w_bytes.data(), w_bytes.size(), (seq % 2) * kHintSlotSize));
    WP_RETURN_IF_ERROR(hint_file_->sync_data());
    hint_seq_ = seq;
    hint_lsn_ = lsn;
    counters_.flush_hint_writes.fetch_add(1, std::memory_order_relaxed);
    return Status();
}

// ------------------------------------------------------------ AcceptorStorage

Lsn WalStorage::choose_scan_start(Lsn commit_lsn) {
    Lsn best = control_.wal_scan_start_lsn;
    while (!boundary_candidates_.empty() && boundary_candidates_.front() <= commit_lsn) {
        best = std::max(best, boundary_candidates_.front());
        boundary_candidates_.pop_front();
    }
    if (best > commit_lsn) best = control_.wal_scan_start_lsn <= commit_lsn ? control_.wal_scan_start_lsn : 0;
    return best;
}

Status WalStorage::poison(Status s) {
    if (!s.ok() && failure_.ok()) failure_ = s;
    return s;
}

Status WalStorage::poison_unless_out_of_space(Status s) {
    if (is_out_of_space(s)) {
        out_of_space_ = true;
        return s;
    }
    if (is_out_of_resources(s)) {
        out_of_resources_ = true;
        return s;
    }
    return poison(s);
}

Status WalStorage::settle_after_out_of_space() {
    if (!failure_.ok()) return failure_;
    WP_RETURN_IF_ERROR(poison(do_flush()));
    if (write_lsn_ != flush_lsn_) {
        WP_RETURN_IF_ERROR(poison(write_flush_hint(write_lsn_)));
        flush_lsn_ = write_lsn_;
    }
    out_of_space_ = false;
    out_of_resources_ = false;
    return Status();
}

std::uint64_t WalStorage::disk_bytes() const {
    return static_cast<std::uint64_t>(segments_.size()) * segment_size();
}

Result<std::uint64_t> WalStorage::remove_wal_below(Lsn new_start) {
    if (!failure_.ok()) return failure_;
    const std::uint32_t segsz = segment_size();
    if (!is_valid_segment_size(segsz) || new_start <= timeline_start_) return std::uint64_t{0};
    if (new_start % segsz != 0)
        return Status::invalid("remove_wal_below " + format_lsn(new_start) +
                               ": not the start of a segment");
    if (new_start > control_.acceptor.commit_lsn || control_.wal_scan_start_lsn == kInvalidLsn ||
        new_start > control_.wal_scan_start_lsn || new_start > flush_lsn_)
        return Status::invalid("remove_wal_below " + format_lsn(new_start) +
                               ": above the durable commit_lsn " +
                               format_lsn(control_.acceptor.commit_lsn) + " or scan start " +
                               format_lsn(control_.wal_scan_start_lsn));
    // 1. The new start is durable before any segment goes: a crash after
    //    this leaves segments below it, which open() removes.
    ControlFileData data = control_;
    data.acceptor.timeline_start_lsn = new_start;
    WP_RETURN_IF_ERROR(poison(store_control_file(fs_, dir_, data)));
    ++control_writes_;
    control_ = std::move(data);
    timeline_start_ = new_start;
    // 2. Unlink the segments below, 3. one directory fsync.
    const SegmentNumber keep = segment_of(new_start, segsz);
    std::uint64_t removed = 0;
    for (auto it = segments_.begin(); it != segments_.end() && it->first < keep;) {
        WP_RETURN_IF_ERROR(poison(fs_.unlink(path_of(it->second.file_name()))));
        removed += segsz;
        it = segments_.erase(it);
    }
    if (removed) WP_RETURN_IF_ERROR(poison(fs_.sync_directory(dir_)));
    counters_.wal_removed_bytes.fetch_add(removed, std::memory_order_relaxed);
    counters_.disk_bytes.store(disk_bytes(), std::memory_order_relaxed);
    return removed;
}

wp::Status WalStorage::persist_state(const AcceptorDurableState& state) {
    if (!failure_.ok()) return failure_;
    ControlFileData data = control_;
    data.acceptor = state;
    // WAL retention may have raised the start (remove_wal_below).
    if (data.acceptor.timeline_start_lsn == kInvalidLsn || data.acceptor.timeline_start_lsn < timeline_start_)
        data.acceptor.timeline_start_lsn = timeline_start_;
    data.wal_scan_start_lsn = choose_scan_start(state.commit_lsn);
    if (data.wal_scan_start_lsn < data.acceptor.timeline_start_lsn) data.wal_scan_start_lsn = 0;
    Status s = store_control_file(fs_, dir_, data);
    if (!s) return poison_unless_out_of_space(s);
    out_of_space_ = false;
    out_of_resources_ = false;
    ++control_writes_;
    control_ = std::move(data);
    return wp::Status();
}

Status WalStorage::set_pg_timeline_history(const std::string& content) {
    if (!failure_.ok()) return failure_;
    if (content == control_.pg_timeline_history) return Status();
    ControlFileData data = control_;
    data.pg_timeline_history = content;
    WP_RETURN_IF_ERROR(poison_unless_out_of_space(store_control_file(fs_, dir_, data)));
    ++control_writes_;
    control_ = std::move(data);
    return Status();
}

Status WalStorage::open_for_write(SegmentNumber segno, std::uint64_t first_offset) {
    if (open_segno_ && *open_segno_ == segno && open_file_) return Status();
    if (open_file_ && open_file_dirty_) {
        // Only happens if a segment is left before it is complete (cannot,
        // since writes are contiguous); keep it for the next flush anyway.
        completed_unsynced_.emplace_back(*open_segno_, std::move(open_file_));
    }
    open_file_.reset();
    open_segno_.reset();
    open_file_dirty_ = false;
    // Blocks are reserved ahead of the writes (reserve_for_write), starting
    // where this storage first writes in the segment; a zero-filled or
    // wholly reserved segment needs none.
    allocation_base_ = allocated_end_ = initialized_end_ = first_offset;
    auto it = segments_.find(segno);
    if (it == segments_.end()) {
        Segment seg{wal_segment_file_name(control_.acceptor.identity.pg_timeline, segno, segment_size()), true};
        // A segment that continues a full one (the timeline is streaming) is
        // reserved whole, as pg_wal's are; a timeline's first segment, or one
        // that WAL starts in the middle of, is sparse and reserved in steps,
        // so an idle timeline's disk use grows with its WAL.
        ZeroFill how = ZeroFill::kWriteZeros;
        if (options_.preallocate_with_fallocate)
            how = first_offset == 0 && segments_.count(segno - 1) ? ZeroFill::kAllocate
                                                                   : ZeroFill::kSparse;
        WP_RETURN_IF_ERROR(
            create_zero_filled_file(fs_, path_of(seg.file_name()), segment_size(), how));
        if (how != ZeroFill::kSparse) allocated_end_ = segment_size();
        if (how == ZeroFill::kWriteZeros) initialized_end_ = segment_size();
        counters_.segments_created.fetch_add(1, std::memory_order_relaxed);
        it = segments_.emplace(segno, seg).first;
    }
    if (!options_.preallocate_with_fallocate) allocated_end_ = initialized_end_ = segment_size();
    auto f = fs_.open(path_of(it->second.file_name()), OpenMode::kReadWrite);
    if (!f) return f.status();
    open_file_ = std::move(*f);
    open_segno_ = segno;
    return Status();
}

// Reserves blocks of the open segment up to at least `end` (an offset in it)
// before a write reaches them, in steps that double with what this storage
// has written into the segment (64 KiB first): a busy segment is reserved
// after a few calls, an idle timeline holds little more than its WAL. Out of
// space here changes nothing (no WAL byte written yet).
Status WalStorage::reserve_for_write(std::uint64_t end) {
    if (end <= allocated_end_) return Status();
    constexpr std::uint64_t kStep = 64 * 1024;
    const std::uint64_t grow = std::max(kStep, allocated_end_ - allocation_base_);
    std::uint64_t new_end = std::max(end, allocated_end_ + grow);
    new_end = std::min<std::uint64_t>(segment_size(), (new_end + kStep - 1) / kStep * kStep);
    WP_RETURN_IF_ERROR(open_file_->allocate(allocated_end_, new_end - allocated_end_));
    counters_.segment_reservations.fetch_add(1, std::memory_order_relaxed);
    allocated_end_ = new_end;
    return Status();
}

// Writes zeros over the reserved blocks after a small WAL write that came
// within half a zone of the written ones, so that the commits that follow
// overwrite written blocks (header: "unwritten" blocks). Only in a segment
// reserved whole: the zeros then take no disk space, and an idle timeline's
// sparse segment keeps its small start-up scan. Large writes (bulk WAL) get
// none: they change the block map once per flush, whatever their size.
Status WalStorage::initialize_ahead(std::uint64_t end, std::size_t size) {
    constexpr std::uint64_t kZone = 256 * 1024;
    constexpr std::uint64_t kSmallWrite = 64 * 1024;
    constexpr std::uint64_t kBlock = 4096;
    initialized_end_ = std::max(initialized_end_, end);
    if (size >= kSmallWrite || allocated_end_ < segment_size()) return Status();
    if (end + kZone / 2 <= initialized_end_) return Status();
    const std::uint64_t from = std::max(initialized_end_, (end + kBlock - 1) / kBlock * kBlock);
    const std::uint64_t to = std::min<std::uint64_t>(segment_size(), from + kZone);
    if (from >= to) return Status();
    WP_RETURN_IF_ERROR(write_zeros(*open_file_, from, to - from));
    counters_.zero_ahead_bytes.fetch_add(to - from, std::memory_order_relaxed);
    initialized_end_ = to;
    return Status();
}

wp::Status WalStorage::write_wal(Lsn begin, const std::uint8_t* data, std::size_t size) {
    if (!failure_.ok()) return failure_;
    const std::uint32_t segsz = segment_size();
    if (!is_valid_segment_size(segsz)) return wp::Status::error("write_wal: timeline identity not known yet");
    if (timeline_start_ == kInvalidLsn && write_lsn_ == kInvalidLsn) {
        timeline_start_ = write_lsn_ = flush_lsn_ = begin;
    }
    if (begin != write_lsn_)
        return wp::Status::error("write_wal at " + format_lsn(begin) + " but WAL ends at " + format_lsn(write_lsn_));
    if (!ingest_decoder_) ingest_decoder_.emplace(decoder_options(), begin);
    Lsn pos = begin;
    std::size_t done = 0;
    while (done < size) {
        const SegmentNumber segno = segment_of(pos, segsz);
        const std::uint64_t off = offset_in_segment(pos, segsz);
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(size - done, segsz - off));
        // A failure leaves write_lsn_ and the ingest decoder at the end of
        // the last complete pwrite, and poisons the storage: bytes of a
        // partial pwrite may lie beyond write_lsn_ (start-up recovery zeroes
        // them), so nothing may be written after them.
        Status s = open_for_write(segno, off);
        if (s) s = reserve_for_write(off + n);
        if (!s) {
            // Creating the next segment or reserving its blocks failed
            // before anything was written to it; out of space is not fatal
            // (see the header).
            counters_.wal_bytes_written.fetch_add(done, std::memory_order_relaxed);
            return poison_unless_out_of_space(s);
        }
        s = open_file_->pwrite_all(data + done, n, off);
        if (s) s = initialize_ahead(off + n, size);
        if (!s) {
            counters_.wal_bytes_written.fetch_add(done, std::memory_order_relaxed);
            return poison(s);
        }
        open_file_dirty_ = true;
        if (off + n == segsz) {
            completed_unsynced_.emplace_back(segno, std::move(open_file_));
            open_segno_.reset();
            open_file_dirty_ = false;
        }
        ingest_decoder_->feed(data + done, n);
        done += n;
        pos += n;
        write_lsn_ = pos;
    }
    counters_.wal_bytes_written.fetch_add(size, std::memory_order_relaxed);
    counters_.disk_bytes.store(disk_bytes(), std::memory_order_relaxed);
    out_of_space_ = false;
    out_of_resources_ = false;
    return wp::Status();
}

wp::Status WalStorage::flush_wal() {
    if (!failure_.ok()) return failure_;
    return poison(do_flush());
}

Status WalStorage::do_flush() {
    if (write_lsn_ == flush_lsn_ && !open_file_dirty_ && completed_unsynced_.empty())
        return Status();
    auto sync_one = [this](File& f) -> Status {
        const auto t0 = std::chrono::steady_clock::now();
        Status s = f.sync_data();
        const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
        counters_.fsync_count.fetch_add(1, std::memory_order_relaxed);
        counters_.fsync_seconds.observe(dt.count());
        return s;
    };
    for (auto& [segno, file] : completed_unsynced_) WP_RETURN_IF_ERROR(sync_one(*file));
    if (open_file_ && open_file_dirty_) WP_RETURN_IF_ERROR(sync_one(*open_file_));
    open_file_dirty_ = false;

    // Every written byte is durable now. What may be acknowledged is what a
    // restart can prove: the end of the last complete record (its CRC vouches
    // for it), or the durable hint. A flush that ends inside a record
    // acknowledges only up to the previous record end while the unproven
    // tail is shorter than kHintLagBytes (the record completes with the next
    // appends, and commits end at record ends); a longer tail (a huge record,
    // the padding after a WAL switch) is acknowledged through the hint, at
    // the cost of one more fdatasync. The limit (options_.hint_lag_bytes) is
    // far below the proposer's in-flight limit, so the proposer never waits
    // for an acknowledgement that waits for more WAL from it.
    const bool decoding = ingest_decoder_ && !ingest_decoder_->failed();
    const Lsn record_end = decoding ? ingest_decoder_->valid_end() : kInvalidLsn;
    Lsn new_flush = write_lsn_;
    if (decoding && record_end == write_lsn_) {
        if (boundary_candidates_.empty() || boundary_candidates_.back() < new_flush)
            boundary_candidates_.push_back(new_flush);
        if (boundary_candidates_.size() > kMaxBoundaryCandidates) boundary_candidates_.pop_front();
    } else {
        const Lsn provable = std::max({flush_lsn_, record_end, hint_lsn_});
        if (decoding && provable <= write_lsn_ && write_lsn_ - provable < options_.hint_lag_bytes) {
            new_flush = provable;
        } else if (write_lsn_ > hint_lsn_) {
            WP_RETURN_IF_ERROR(write_flush_hint(write_lsn_));
        }
    }

    if (!completed_unsynced_.empty()) {
        for (auto& [segno, file] : completed_unsynced_) {
            Segment& seg = segments_[segno];
            if (seg.partial) {
                WP_RETURN_IF_ERROR(fs_.rename(path_of(seg.file_name()), path_of(seg.base_name)));
                seg.partial = false;
            }
        }
        completed_unsynced_.clear();
        WP_RETURN_IF_ERROR(fs_.sync_directory(dir_));
    }
    flush_lsn_ = std::max(flush_lsn_, new_flush);
    return Status();
}

wp::Status WalStorage::truncate_wal(Lsn end) {
    if (!failure_.ok()) return failure_;
    Status s = do_truncate(end);
    // A refused request (kInvalidInput) changed nothing; any other failure
    // left the files in an unknown state.
    if (!s && s.kind() != StatusKind::kInvalidInput) (void)poison(s);
    return s;
}

Status WalStorage::do_truncate(Lsn end) {
    if (timeline_start_ == kInvalidLsn && write_lsn_ == kInvalidLsn) {
        // Empty store: this is where WAL will start.
        timeline_start_ = write_lsn_ = flush_lsn_ = end;
        ingest_decoder_.reset();
        if (is_valid_segment_size(segment_size())) ingest_decoder_.emplace(decoder_options(), end);
        return Status();
    }
    if (end > write_lsn_)
        return Status::invalid("truncate_wal to " + format_lsn(end) + " beyond end of WAL " + format_lsn(write_lsn_));
    if (end < timeline_start_)
        return Status::invalid("truncate_wal to " + format_lsn(end) + " below timeline start " +
                               format_lsn(timeline_start_));
    if (end == write_lsn_ && end == flush_lsn_) return Status();

    // 1. The hint moves to `end` first, so a decoder that runs into zeros
    //    below the old end still knows everything up to `end` is durable.
    WP_RETURN_IF_ERROR(write_flush_hint(end));

    const std::uint32_t segsz = segment_size();
    const SegmentNumber end_segno = segment_of(end, segsz);
    const std::uint64_t end_off = offset_in_segment(end, segsz);
    const Lsn old_write = write_lsn_;
    open_file_.reset();
    open_segno_.reset();
    open_file_dirty_ = false;
    completed_unsynced_.clear();

    // 2. Zero [end, old write end) in the segment holding `end`, durably.
    auto it = segments_.find(end_segno);
    if (it != segments_.end() && end_off > 0) {
        auto f = fs_.open(path_of(it->second.file_name()), OpenMode::kReadWrite);
        if (!f) return f.status();
        const std::uint64_t zero_to = std::min<std::uint64_t>(segsz, old_write - segment_start(end_segno, segsz));
        if (zero_to > end_off) WP_RETURN_IF_ERROR(write_zeros(**f, end_off, zero_to - end_off));
        WP_RETURN_IF_ERROR((*f)->sync_data());
        counters_.fsync_count.fetch_add(1, std::memory_order_relaxed);
        if (!it->second.partial) {
            WP_RETURN_IF_ERROR(fs_.rename(path_of(it->second.file_name()), path_of(it->second.base_name + ".partial")));
            it->second.partial = true;
        }
    }
    // 3. Remove later segments; one directory fsync makes 2 and 3 durable.
    for (auto s = segments_.begin(); s != segments_.end();) {
        if (s->first > end_segno || (s->first == end_segno && end_off == 0)) {
            WP_RETURN_IF_ERROR(fs_.unlink(path_of(s->second.file_name())));
            s = segments_.erase(s);
        } else {
            ++s;
        }
    }
    WP_RETURN_IF_ERROR(fs_.sync_directory(dir_));

    write_lsn_ = flush_lsn_ = end;
    while (!boundary_candidates_.empty() && boundary_candidates_.back() > end) boundary_candidates_.pop_back();

    // Rebuild the ingest decoder at `end` by decoding from a record boundary.
    Lsn scan_start = control_.wal_scan_start_lsn;
    if (!boundary_candidates_.empty()) scan_start = std::max(scan_start, boundary_candidates_.back());
    if (scan_start > end || scan_start < timeline_start_) scan_start = timeline_start_;
    WalStreamDecoder decoder(decoder_options(), scan_start);
    WP_RETURN_IF_ERROR(decode_forward(decoder, end));
    ingest_decoder_ = decoder;
    return Status();
}

bool WalStorage::release_files() {
    if (open_file_dirty_ || !completed_unsynced_.empty()) return false;
    open_file_.reset();
    open_segno_.reset();
    hint_file_.reset();
    return true;
}

Result<std::size_t> WalStorage::read_wal(Lsn lsn, std::uint8_t* buf, std::size_t len) {
    if (!failure_.ok()) return failure_;
    const std::uint32_t segsz = segment_size();
    if (lsn >= flush_lsn_ || !is_valid_segment_size(segsz)) return std::size_t{0};
    len = static_cast<std::size_t>(std::min<std::uint64_t>(len, flush_lsn_ - lsn));
    std::size_t done = 0;
    while (done < len) {
        const SegmentNumber segno = segment_of(lsn + done, segsz);
        auto it = segments_.find(segno);
        if (it == segments_.end()) return Status::error(StatusKind::kNotFound, "WAL segment for " + format_lsn(lsn + done) + " is missing");
        auto f = fs_.open(path_of(it->second.file_name()), OpenMode::kReadOnly);
        if (!f) return f.status();
        const std::uint64_t off = offset_in_segment(lsn + done, segsz);
        const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(len - done, segsz - off));
        auto n = (*f)->pread_upto(buf + done, want, off);
        if (!n) return n.status();
        done += *n;
        if (*n < want) break;
    }
    return done;
}

std::vector<std::string> WalStorage::segment_file_names() const {
    std::vector<std::string> out;
    for (const auto& [segno, seg] : segments_) out.push_back(seg.file_name());
    return out;
}

wp::Status WalStorage::read_wal(Lsn begin, Lsn end, std::vector<std::uint8_t>& out) {
    if (end < begin || end > flush_lsn_)
        return wp::Status::error("read of WAL beyond the flush LSN");
    const std::size_t at = out.size();
    out.resize(at + static_cast<std::size_t>(end - begin));
    auto n = read_wal(begin, out.data() + at, static_cast<std::size_t>(end - begin));
    if (!n) return n.status();
    if (*n != end - begin) return wp::Status::error("short read of WAL at " + format_lsn(begin));
    return wp::Status();
}

}  // namespace wp::sk
