#include "pull_timeline/pull.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>

#include "storage/wal_decoder.h"
#include "storage/wal_format.h"
#include "storage/wal_storage.h"

namespace wp::sk {
namespace {

using Clock = std::chrono::steady_clock;

// The LSN start-up recovery decodes from (WalStorage::recover): the control
// file's record boundary, or the timeline start.
Lsn scan_start_of(const ControlFileData& c) {
    return std::max(c.wal_scan_start_lsn, c.acceptor.timeline_start_lsn);
}

PullOutcome fail(PullOutcome out, PullFailure f, Status s) {
    out.failure = f;
    out.status = std::move(s);
    return out;
}

// Downloads one segment's range into a new file in `staging` and syncs it.
// Source errors come back with `source_error` set.
Status copy_segment(FileSystem& fs, const std::string& staging, const SnapshotSegment& seg,
                    std::uint32_t segsz, bool fallocate, SnapshotSource& source,
                    const PullSnapshot& snap, WalStreamDecoder& decoder, Lsn scan_start,
                    const PullOptions& options, Clock::time_point started,
                    std::uint64_t& bytes_done, bool& source_error) {
    auto file = fs.open(join_path(staging, seg.file_name), OpenMode::kCreateExclusive);
    if (!file) return file.status();
    if (fallocate) {
        WP_RETURN_IF_ERROR((*file)->allocate(0, segsz));
    } else {
        WP_RETURN_IF_ERROR(write_zeros(**file, 0, segsz));
    }
    const Lsn seg_start = segment_start(segment_of(seg.start_lsn, segsz), segsz);
    std::string chunk;
    for (Lsn pos = seg.start_lsn; pos < seg.end_lsn;) {
        const Lsn end = std::min<Lsn>(seg.end_lsn, pos + kMaxSnapshotWalChunk);
        if (options.cancel && options.cancel->load())
            return Status::error("the safekeeper is shutting down; the pull was abandoned");
        chunk.clear();
        Status s = source.read_wal(snap, pos, end, chunk);
        if (s && chunk.size() != end - pos)
            s = Status::error("source sent " + std::to_string(chunk.size()) + " bytes of WAL at " +
                              format_lsn(pos) + ", expected " + std::to_string(end - pos));
        if (!s) {
            source_error = true;
            return s;
        }
        WP_RETURN_IF_ERROR((*file)->pwrite_all(chunk.data(), chunk.size(), pos - seg_start));
        if (end > scan_start) {
            const Lsn from = std::max(pos, scan_start);
            decoder.feed(reinterpret_cast<const std::uint8_t*>(chunk.data()) + (from - pos),
                         static_cast<std::size_t>(end - from));
        }
        bytes_done += chunk.size();
        pos = end;
        if (options.max_bytes_per_second > 0) {
            const auto due =
                started + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                              static_cast<double>(bytes_done) /
                              static_cast<double>(options.max_bytes_per_second)));
            std::this_thread::sleep_until(due);
        }
    }
    return (*file)->sync_data();
}

}  // namespace

const char* pull_failure_name(PullFailure f) {
    switch (f) {
        case PullFailure::kNone:
            return "none";
        case PullFailure::kConflict:
            return "conflict";
        case PullFailure::kSource:
            return "source";
        case PullFailure::kLocal:
            return "local";
    }
    return "unknown";
}

Result<ControlFileData> verify_snapshot(const PullSnapshot& s, const Id128& tenant,
                                        const Id128& timeline) {
    auto bad = [](const std::string& why) { return Status::invalid("invalid snapshot: " + why); };
    if (s.tenant_id != tenant || s.timeline_id != timeline)
        return bad("it is of timeline " + TimelineKey{s.tenant_id, s.timeline_id}.to_string());
    auto control = decode_control_file(s.control_file);
    if (!control) return bad("control file: " + control.status().message());
    const AcceptorDurableState& a = control->acceptor;
    if (a.identity.tenant_id != tenant || a.identity.timeline_id != timeline)
        return bad("its control file is of another timeline");
    if (a.commit_lsn > s.flush_lsn)
        return bad("commit_lsn " + format_lsn(a.commit_lsn) + " is above flush_lsn " +
                   format_lsn(s.flush_lsn));
    if (a.timeline_start_lsn != s.timeline_start_lsn)
        return bad("timeline_start_lsn differs from its control file's");
    if (term_of_wal_below(a.term_history, s.flush_lsn) != s.wal_term)
        return bad("wal_term " + std::to_string(s.wal_term) +
                   " is not the term of its history at flush_lsn " + format_lsn(s.flush_lsn));
    if (s.flush_lsn == kInvalidLsn || s.flush_lsn == s.timeline_start_lsn) {
        if (!s.segments.empty()) return bad("segments listed, but it holds no WAL");
        return control;
    }
    const std::uint32_t segsz = a.identity.wal_segment_size;
    if (!is_valid_segment_size(segsz)) return bad("WAL without a valid segment size");
    if (s.segments.empty())
        return bad("it holds WAL up to " + format_lsn(s.flush_lsn) + " but lists no segment");
    if (s.segments.front().start_lsn > scan_start_of(*control) ||
        s.segments.front().start_lsn > a.commit_lsn)
        return bad("its first segment starts at " + format_lsn(s.segments.front().start_lsn) +
                   ", above the WAL start-up recovery needs (" +
                   format_lsn(std::min(scan_start_of(*control), a.commit_lsn)) + ")");
    for (std::size_t i = 0; i < s.segments.size(); ++i) {
        const SnapshotSegment& seg = s.segments[i];
        auto name = parse_wal_segment_file_name(seg.file_name, segsz);
        if (!name) return bad("'" + seg.file_name + "' is not a WAL segment file name");
        const Lsn begin = segment_start(name->segno, segsz);
        const Lsn end = segment_start(name->segno + 1, segsz);
        const bool last = i + 1 == s.segments.size();
        if (seg.start_lsn != begin || seg.end_lsn <= seg.start_lsn || seg.end_lsn > end)
            return bad("range [" + format_lsn(seg.start_lsn) + ", " + format_lsn(seg.end_lsn) +
                       ") does not fit segment " + seg.file_name);
        if (i > 0 && seg.start_lsn != s.segments[i - 1].end_lsn)
            return bad("segments are not contiguous at " + seg.file_name);
        if (last && seg.end_lsn != s.flush_lsn)
            return bad("the last segment does not end at flush_lsn");
        if (name->partial != (seg.end_lsn < end))
            return bad(seg.file_name + (name->partial ? " is .partial but complete"
                                                      : " is incomplete but not .partial"));
    }
    return control;
}

PullOutcome pull_timeline(TimelineRegistry& registry, const Id128& tenant, const Id128& timeline,
                          SnapshotSource& source, const PullOptions& options) {
    const auto started = Clock::now();
    const std::string name = TimelineKey{tenant, timeline}.to_string();
    PullOutcome out;
    if (!options.reserved) {
        if (Status s = registry.begin_pull(tenant, timeline); !s)
            return fail(std::move(out), PullFailure::kConflict, s);
    }
    FileSystem& fs = registry.file_system();
    const std::string staging = registry.pull_staging_dir(tenant, timeline);
    const std::string tenant_dir = parent_directory(staging);
    bool staged = false;
    auto give_up = [&](PullFailure f, Status s) {
        if (staged) {
            Status r = fs.remove_tree(staging);
            if (r) r = fs.sync_directory(tenant_dir);
            if (!r) spdlog::warn("pull {}: cannot remove {}: {}", name, staging, r.message());
        }
        registry.end_pull(tenant, timeline);
        spdlog::error("pull {} from {}: failed ({}): {}", name, source.describe(),
                      pull_failure_name(f), s.message());
        return fail(std::move(out), f, std::move(s));
    };

    auto snap = source.fetch_snapshot(tenant, timeline);
    if (!snap) return give_up(PullFailure::kSource, snap.status());
    out.snapshot = *snap;
    auto control = verify_snapshot(*snap, tenant, timeline);
    if (!control) return give_up(PullFailure::kSource, control.status());
    spdlog::info(
        "pull {} from {}: snapshot of node {}: flush_lsn {}, commit_lsn {}, term {}, "
        "{} segments",
        name, source.describe(), snap->source_node, format_lsn(snap->flush_lsn),
        format_lsn(control->acceptor.commit_lsn), control->acceptor.term, snap->segments.size());

    // A timeline deleted here before may have voted in terms the source has
    // not reached: keep this node's promises (docs/storage.md, tombstones).
    auto tombstone = registry.load_tombstone_of(tenant, timeline);
    if (!tombstone) return give_up(PullFailure::kLocal, tombstone.status());
    if (*tombstone) {
        control->acceptor.term = std::max(control->acceptor.term, (*tombstone)->term);
        control->acceptor.min_pg_timeline =
            std::max(control->acceptor.min_pg_timeline, (*tombstone)->min_pg_timeline);
        if ((*tombstone)->configuration.key() > control->acceptor.configuration.key())
            control->acceptor.configuration = (*tombstone)->configuration;
    }

    Status s = make_directory_durably(fs, tenant_dir);
    if (s && fs.exists(staging)) s = fs.remove_tree(staging);  // cannot happen after load_all
    if (s) s = make_directory_durably(fs, staging);
    staged = true;
    if (!s) return give_up(PullFailure::kLocal, s);

    const std::uint32_t segsz = control->acceptor.identity.wal_segment_size;
    const Lsn scan_start = scan_start_of(*control);
    WalStreamDecoder::Options dopts;
    dopts.segment_size = is_valid_segment_size(segsz) ? segsz : (16u << 20);
    dopts.system_id = control->acceptor.identity.system_id;
    WalStreamDecoder decoder(dopts, scan_start);
    for (const SnapshotSegment& seg : snap->segments) {
        bool source_error = false;
        s = copy_segment(fs, staging, seg, segsz,
                         registry.storage_options().preallocate_with_fallocate, source, *snap,
                         decoder, scan_start, options, started, out.wal_bytes, source_error);
        if (!s)
            return give_up(source_error ? PullFailure::kSource : PullFailure::kLocal,
                           s.with_context("segment " + seg.file_name));
        spdlog::debug("pull {}: copied {}", name, seg.file_name);
    }
    // The copy must decode as WAL: up to commit_lsn at least (what a
    // start-up needs), and nothing invalid below the flush LSN.
    if (!snap->segments.empty()) {
        if (decoder.failed())
            return give_up(
                PullFailure::kSource,
                Status::corrupt("the copied WAL does not decode after " +
                                format_lsn(decoder.valid_end()) + ": " + decoder.failure()));
        if (decoder.valid_end() < control->acceptor.commit_lsn)
            return give_up(PullFailure::kSource,
                           Status::corrupt("the copied WAL decodes only up to " +
                                           format_lsn(decoder.valid_end()) + ", below commit_lsn " +
                                           format_lsn(control->acceptor.commit_lsn)));
    }

    // The flush LSN may lie inside a record: the hint vouches for it, as on
    // the source (every copied byte is durable now).
    const std::string hint = snap->flush_lsn > snap->timeline_start_lsn
                                 ? encode_flush_hint_file(snap->flush_lsn)
                                 : std::string(1024, '\0');
    {
        auto f = fs.open(join_path(staging, kFlushHintFileName), OpenMode::kCreateExclusive);
        s = f ? (*f)->pwrite_all(hint.data(), hint.size(), 0) : f.status();
        if (s) s = (*f)->sync_data();
    }
    if (s) s = store_control_file(fs, staging, *control);
    if (s) s = fs.sync_directory(staging);
    if (!s) return give_up(PullFailure::kLocal, s);

    auto tl = registry.install_pulled(tenant, timeline);
    if (!tl && !registry.find(tenant, timeline))  // refused before the rename
        return give_up(PullFailure::kLocal, tl.status());
    registry.end_pull(tenant, timeline);
    if (!tl) {
        // Renamed into place but it does not open: it is registered as broken
        // (like a corrupt timeline at start-up), for the operator to inspect.
        spdlog::error("pull {}: the copied timeline does not open: {}", name,
                      tl.status().message());
        return fail(std::move(out), PullFailure::kLocal, tl.status());
    }
    const TimelineSnapshot now = (*tl)->snapshot();
    out.term = now.term;
    out.commit_lsn = now.commit_lsn;
    out.seconds = std::chrono::duration<double>(Clock::now() - started).count();
    if (now.flush_lsn != snap->flush_lsn) {
        // Cannot happen: recovery takes max(decoded end, hint).
        spdlog::error("pull {}: flush_lsn after opening is {}, the snapshot's {}", name,
                      format_lsn(now.flush_lsn), format_lsn(snap->flush_lsn));
    }
    spdlog::info(
        "pull {} from {}: done in {:.3f} s: flush_lsn {}, commit_lsn {}, term {}, {} WAL "
        "bytes in {} segments",
        name, source.describe(), out.seconds, format_lsn(now.flush_lsn), format_lsn(now.commit_lsn),
        now.term, out.wal_bytes, snap->segments.size());
    return out;
}

}  // namespace wp::sk
