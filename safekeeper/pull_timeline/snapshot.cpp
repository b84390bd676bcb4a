#include "pull_timeline/snapshot.h"

#include <algorithm>

#include "storage/control_file.h"
#include "storage/wal_format.h"

namespace wp::sk {

Term term_of_wal_below(const TermHistory& history, Lsn lsn) {
    Term term = 0;
    for (const TermLsn& e : history)
        if (e.lsn < lsn) term = e.term;
    return term;
}

Result<PullSnapshot> take_snapshot(Timeline& tl, NodeId node_id) {
    std::lock_guard<std::mutex> g(tl.mutex());
    if (tl.state() != TimelineState::kActive || !tl.storage())
        return Status::invalid("timeline " + tl.name() + " is " + timeline_state_name(tl.state()) +
                               ": it cannot be the source of a pull");
    WalStorage& storage = *tl.storage();
    if (!storage.failure().ok())
        return Status::invalid("timeline " + tl.name() +
                               " has failed: " + storage.failure().message());
    PullSnapshot s;
    s.tenant_id = tl.tenant_id();
    s.timeline_id = tl.timeline_id();
    s.source_node = node_id;
    s.flush_lsn = storage.flush_lsn();
    // The durable state as it is on disk; only commit_lsn is taken from
    // memory when it is newer (it is persisted at most once a second), never
    // above the flush LSN (invariant 3).
    ControlFileData data = storage.control();
    const Lsn commit_in_memory = std::min(tl.acceptor()->state().commit_lsn, s.flush_lsn);
    data.acceptor.commit_lsn = std::max(data.acceptor.commit_lsn, commit_in_memory);
    if (storage.timeline_start_lsn() != kInvalidLsn)
        data.acceptor.timeline_start_lsn = storage.timeline_start_lsn();
    s.timeline_start_lsn = data.acceptor.timeline_start_lsn;
    s.wal_term = term_of_wal_below(data.acceptor.term_history, s.flush_lsn);
    s.control_file = encode_control_file(data);

    const std::uint32_t segsz = data.acceptor.identity.wal_segment_size;
    if (s.flush_lsn == kInvalidLsn || !is_valid_segment_size(segsz)) return s;  // no WAL yet
    const SegmentNumber last = segment_of(s.flush_lsn - 1, segsz);
    for (const std::string& name : storage.segment_file_names()) {
        auto parsed = parse_wal_segment_file_name(name, segsz);
        if (!parsed || parsed->segno > last) continue;
        SnapshotSegment seg;
        seg.start_lsn = segment_start(parsed->segno, segsz);
        seg.end_lsn = std::min<Lsn>(segment_start(parsed->segno + 1, segsz), s.flush_lsn);
        seg.file_name = name.substr(0, 24);
        if (seg.end_lsn < segment_start(parsed->segno + 1, segsz)) seg.file_name += ".partial";
        s.segments.push_back(seg);
    }
    return s;
}

SnapshotWalRead read_snapshot_wal(Timeline& tl, Lsn flush_lsn, Term wal_term, Lsn start, Lsn end,
                                  std::string& out) {
    SnapshotWalRead r;
    if (start >= end || end > flush_lsn || end - start > kMaxSnapshotWalChunk) {
        r.status = Status::invalid("bad WAL range [" + format_lsn(start) + ", " + format_lsn(end) +
                                   "): it must be non-empty, end at or below the snapshot's "
                                   "flush_lsn " +
                                   format_lsn(flush_lsn) + " and at most " +
                                   std::to_string(kMaxSnapshotWalChunk) + " bytes long");
        return r;
    }
    std::lock_guard<std::mutex> g(tl.mutex());
    if (tl.state() != TimelineState::kActive || !tl.storage()) {
        r.status =
            Status::invalid("timeline " + tl.name() + " is " + timeline_state_name(tl.state()));
        return r;
    }
    WalStorage& storage = *tl.storage();
    const Lsn flush_now = storage.flush_lsn();
    const Term term_now = term_of_wal_below(tl.acceptor()->state().term_history, flush_lsn);
    if (flush_now < flush_lsn || term_now != wal_term) {
        r.stale = true;
        r.status = Status::error(
            "snapshot is no longer valid: the WAL below its flush_lsn " + format_lsn(flush_lsn) +
            " was written by term " + std::to_string(wal_term) + ", but the source now holds " +
            "WAL of term " + std::to_string(term_now) + " there (flush_lsn " +
            format_lsn(flush_now) + "): a newer term truncated it; start the pull again");
        return r;
    }
    const std::size_t at = out.size();
    const std::size_t len = static_cast<std::size_t>(end - start);
    out.resize(at + len);
    auto n = storage.read_wal(start, reinterpret_cast<std::uint8_t*>(&out[at]), len);
    if (!n) {
        out.resize(at);
        r.status = n.status();
        return r;
    }
    if (*n != len) {
        out.resize(at);
        r.status = Status::error("short read of WAL at " + format_lsn(start));
    }
    return r;
}

}  // namespace wp::sk
