// WalStorage recovery (WalStorage::open): everything found on disk is made
// durable, leftovers removed, segments scanned and the end of WAL found by
// decoding records forward. Split out of wal_storage.cpp; the contract is in
// storage/wal_storage.h.
#include <algorithm>

#include "storage/wal_storage.h"

namespace wp::sk {
namespace {

constexpr std::size_t kReadChunk = 1 << 20;

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// kCorrupt naming both LSNs if commit_lsn (durable, from the control file)
// is above the recovered end of WAL: WAL acknowledged as committed is
// missing, and serving the timeline would silently lose it.
Status check_commit_within_wal(Lsn commit_lsn, Lsn flush_lsn) {
    if (commit_lsn <= flush_lsn) return Status();
    return Status::corrupt("control file commit_lsn " + format_lsn(commit_lsn) +
                           " is above the end of WAL found on disk " + format_lsn(flush_lsn) +
                           ": WAL acknowledged as committed is missing; refusing service "
                           "(restore the missing WAL, or DELETE the timeline)");
}

}  // namespace

// ----------------------------------------------------------------- recovery

Status WalStorage::recover() {
    auto control = load_control_file(fs_, dir_);
    if (!control) return control.status();
    control_ = std::move(*control);
    timeline_start_ = control_.acceptor.timeline_start_lsn;

    auto names = fs_.list_directory(dir_);
    if (!names) return names.status();
    WP_RETURN_IF_ERROR(sync_everything(*names));
    WP_RETURN_IF_ERROR(remove_leftovers(*names));

    auto hint = read_flush_hint();
    if (!hint) return hint.status();

    if (!is_valid_segment_size(segment_size())) {
        // Identity not known yet: no WAL can have been written.
        timeline_start_ = write_lsn_ = flush_lsn_ = kInvalidLsn;
        recovery_.stop_reason = "no WAL (identity not yet known)";
        return Status();
    }
    WP_RETURN_IF_ERROR(scan_segments(*names));

    if (timeline_start_ == kInvalidLsn) {
        // Empty timeline: any segment file is a leftover of a start that was
        // never persisted.
        for (auto& [segno, seg] : segments_) {
            WP_RETURN_IF_ERROR(fs_.unlink(path_of(seg.file_name())));
            recovery_.actions.push_back("removed " + seg.file_name() + " (timeline holds no WAL)");
        }
        if (!segments_.empty()) WP_RETURN_IF_ERROR(fs_.sync_directory(dir_));
        segments_.clear();
        write_lsn_ = flush_lsn_ = kInvalidLsn;
        recovery_.stop_reason = "no WAL";
        return Status();
    }

    // WAL retention records a raised timeline start before it unlinks the
    // segments below it (WalStorage::remove_wal_below): finish an
    // interrupted removal.
    bool removed_below_start = false;
    for (auto it = segments_.begin();
         it != segments_.end() && it->first < segment_of(timeline_start_, segment_size());) {
        WP_RETURN_IF_ERROR(fs_.unlink(path_of(it->second.file_name())));
        recovery_.actions.push_back("removed " + it->second.file_name() +
                                    " (below the timeline start " + format_lsn(timeline_start_) +
                                    ": interrupted WAL removal)");
        removed_below_start = true;
        it = segments_.erase(it);
    }
    if (removed_below_start) WP_RETURN_IF_ERROR(fs_.sync_directory(dir_));

    Lsn scan_start = control_.wal_scan_start_lsn;
    if (scan_start < timeline_start_) scan_start = timeline_start_;
    // Decoding trusts the WAL below scan_start, and a missing segment just
    // ends it: every segment from scan_start up to commit_lsn must exist.
    const Lsn commit = control_.acceptor.commit_lsn;
    if (commit > timeline_start_) {
        const SegmentNumber last = segment_of(commit - 1, segment_size());
        for (SegmentNumber segno = segment_of(std::min(scan_start, commit - 1), segment_size());
             segno <= last; ++segno) {
            if (segments_.count(segno)) continue;
            return Status::corrupt(
                "WAL segment " +
                wal_segment_file_name(control_.acceptor.identity.pg_timeline, segno,
                                      segment_size()) +
                " is missing, but control file commit_lsn " + format_lsn(commit) +
                " says WAL in it was committed; refusing service (restore the missing WAL, or "
                "DELETE the timeline)");
        }
    }
    WalStreamDecoder decoder(decoder_options(), scan_start);
    WP_RETURN_IF_ERROR(decode_forward(decoder, kInvalidLsn));
    recovery_.scan_start = scan_start;
    recovery_.decoded_end = decoder.valid_end();
    recovery_.records_decoded = decoder.records_decoded();
    recovery_.stop_reason = decoder.failed() ? decoder.failure() : "end of segment files";
    recovery_.hint_lsn = *hint;

    flush_lsn_ = std::max(decoder.valid_end(), *hint);
    write_lsn_ = flush_lsn_;
    hint_lsn_ = *hint;
    recovery_.flush_lsn = flush_lsn_;
    // Checked before normalizing, so the files stay as found for an operator.
    WP_RETURN_IF_ERROR(check_commit_within_wal(control_.acceptor.commit_lsn, flush_lsn_));

    WP_RETURN_IF_ERROR(normalize_after_recovery());

    WalStreamDecoder ingest(decoder_options(), scan_start);
    WP_RETURN_IF_ERROR(decode_forward(ingest, flush_lsn_));
    ingest_decoder_ = ingest;
    counters_.disk_bytes.store(disk_bytes(), std::memory_order_relaxed);
    return Status();
}

// A process crash (SIGKILL, OOM kill) keeps the page cache: files may hold
// bytes that were written but never synced, and would be lost by a later
// OS crash. Nothing found on disk is trusted (and acknowledged) before it
// is durable, so every file of the timeline is fsynced one by one (unlike
// syncfs, a per-file fsync reports an error reliably), then the directory
// and its parent. A failure is returned: the timeline is then broken, and
// the fsync is never retried.
Status WalStorage::sync_everything(const std::vector<std::string>& names) {
    for (const std::string& name : names) {
        const std::string path = path_of(name);
        if (ends_with(name, ".tmp") || fs_.is_directory(path)) continue;  // .tmp: removed next
        auto f = fs_.open(path, OpenMode::kReadOnly);
        if (!f) return f.status().with_context("start-up fsync");
        WP_RETURN_IF_ERROR((*f)->sync_data().with_context("start-up fsync of " + path));
    }
    WP_RETURN_IF_ERROR(fs_.sync_directory(dir_).with_context("start-up fsync"));
    return sync_parent_directory(fs_, dir_).with_context("start-up fsync");
}

Status WalStorage::remove_leftovers(std::vector<std::string>& names) {
    bool removed = false;
    for (auto it = names.begin(); it != names.end();) {
        if (ends_with(*it, ".tmp")) {
            WP_RETURN_IF_ERROR(fs_.unlink(path_of(*it)));
            recovery_.actions.push_back("removed leftover " + *it);
            removed = true;
            it = names.erase(it);
        } else {
            ++it;
        }
    }
    if (removed) WP_RETURN_IF_ERROR(fs_.sync_directory(dir_));
    return Status();
}

Status WalStorage::scan_segments(const std::vector<std::string>& names) {
    for (const std::string& name : names) {
        auto parsed = parse_wal_segment_file_name(name, segment_size());
        if (!parsed) continue;
        Segment seg{name.substr(0, 24), parsed->partial};
        auto [it, inserted] = segments_.emplace(parsed->segno, seg);
        if (!inserted) {
            // Two files for one segment (e.g. different PG timelines): keep
            // the higher timeline, remove the other one.
            std::string loser = name;
            if (seg.base_name > it->second.base_name) {
                loser = it->second.file_name();
                it->second = seg;
            }
            WP_RETURN_IF_ERROR(durable_unlink(fs_, path_of(loser)));
            recovery_.actions.push_back("removed duplicate segment " + loser);
        }
    }
    return Status();
}

Status WalStorage::decode_forward(WalStreamDecoder& decoder, Lsn until) {
    // Reads start small and double up to kReadChunk: decoding usually stops
    // at the zeros after the last record, and an idle timeline's WAL is
    // short, so its start-up reads little more than its WAL.
    std::size_t chunk = 64 * 1024;
    std::vector<std::uint8_t> buf(kReadChunk);
    const std::uint32_t segsz = segment_size();
    Lsn pos = decoder.position();
    std::unique_ptr<File> file;
    SegmentNumber file_segno = 0;
    while (!decoder.failed() && (until == kInvalidLsn || pos < until)) {
        const SegmentNumber segno = segment_of(pos, segsz);
        auto it = segments_.find(segno);
        if (it == segments_.end()) break;
        if (!file || file_segno != segno) {
            auto f = fs_.open(path_of(it->second.file_name()), OpenMode::kReadOnly);
            if (!f) return f.status();
            file = std::move(*f);
            file_segno = segno;
        }
        const std::uint64_t off = offset_in_segment(pos, segsz);
        std::uint64_t want = std::min<std::uint64_t>(chunk, segsz - off);
        chunk = std::min(kReadChunk, chunk * 2);
        if (until != kInvalidLsn) want = std::min<std::uint64_t>(want, until - pos);
        auto n = file->pread_upto(buf.data(), static_cast<std::size_t>(want), off);
        if (!n) return n.status();
        decoder.feed(buf.data(), *n);
        recovery_.bytes_read += *n;
        pos += *n;
        if (*n < want) break;  // short file
    }
    return Status();
}

Status WalStorage::normalize_after_recovery() {
    const std::uint32_t segsz = segment_size();
    const SegmentNumber flush_segno = segment_of(flush_lsn_, segsz);
    const std::uint64_t flush_off = offset_in_segment(flush_lsn_, segsz);
    bool dir_changed = false;
    for (auto it = segments_.begin(); it != segments_.end();) {
        const SegmentNumber segno = it->first;
        Segment& seg = it->second;
        if (segno > flush_segno || (segno == flush_segno && flush_off == 0)) {
            WP_RETURN_IF_ERROR(fs_.unlink(path_of(seg.file_name())));
            recovery_.actions.push_back("removed " + seg.file_name() + " (beyond end of WAL)");
            dir_changed = true;
            it = segments_.erase(it);
            continue;
        }
        if (segno < flush_segno && seg.partial) {
            WP_RETURN_IF_ERROR(
                durable_rename(fs_, path_of(seg.file_name()), path_of(seg.base_name)));
            recovery_.actions.push_back("completed segment " + seg.base_name);
            seg.partial = false;
        } else if (segno == flush_segno) {
            if (!seg.partial) {
                WP_RETURN_IF_ERROR(
                    fs_.rename(path_of(seg.file_name()), path_of(seg.base_name + ".partial")));
                seg.partial = true;
                dir_changed = true;
                recovery_.actions.push_back("renamed " + seg.base_name + " to .partial");
            }
            // Everything after the end of WAL must be zeros. Only regions
            // that may hold data are read: holes and reserved blocks never
            // written read as zeros, so an idle timeline's start-up reads
            // little more than its WAL.
            auto f = fs_.open(path_of(seg.file_name()), OpenMode::kReadWrite);
            if (!f) return f.status();
            std::vector<std::uint8_t> buf(kReadChunk);
            bool dirty = false;
            for (std::uint64_t off = flush_off; off < segsz;) {
                auto region = (*f)->data_region(off);
                if (!region) return region.status();
                if (region->begin >= std::min<std::uint64_t>(region->end, segsz)) break;
                off = region->begin;
                const std::uint64_t region_end = std::min<std::uint64_t>(region->end, segsz);
                while (off < region_end) {
                    auto n = (*f)->pread_upto(
                        buf.data(), std::min<std::uint64_t>(kReadChunk, region_end - off), off);
                    if (!n) return n.status();
                    if (*n == 0) break;
                    recovery_.bytes_read += *n;
                    if (std::any_of(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n),
                                    [](std::uint8_t b) { return b != 0; })) {
                        WP_RETURN_IF_ERROR(write_zeros(**f, off, *n));
                        dirty = true;
                    }
                    off += *n;
                }
                off = region_end;
            }
            auto size = (*f)->size();
            if (!size) return size.status();
            if (*size < segsz) {
                WP_RETURN_IF_ERROR((*f)->extend_sparse(segsz));
                dirty = true;
            }
            if (dirty) {
                WP_RETURN_IF_ERROR((*f)->sync_data());
                recovery_.actions.push_back("zeroed " + seg.file_name() + " after " +
                                            format_lsn(flush_lsn_));
            }
        }
        ++it;
    }
    if (dir_changed) WP_RETURN_IF_ERROR(fs_.sync_directory(dir_));
    return Status();
}

}  // namespace wp::sk
