#include "pull_timeline/snapshot.h"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "storage/control_file.h"
#include "storage/wal_format.h"

namespace wp::sk {
namespace {

std::string to_hex(const std::string& bytes) {
    static const char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char c : bytes) {
        out.push_back(kDigits[c >> 4]);
        out.push_back(kDigits[c & 15]);
    }
    return out;
}

Result<std::string> from_hex(const std::string& hex) {
    if (hex.size() % 2 != 0) return Status::invalid("odd number of hex digits");
    auto digit = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::string out;
    out.reserve(hex.size() / 2);
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        const int hi = digit(hex[i]), lo = digit(hex[i + 1]);
        if (hi < 0 || lo < 0) return Status::invalid("not a hex digit in control_file");
        out.push_back(static_cast<char>(hi * 16 + lo));
    }
    return out;
}

}  // namespace

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

std::string snapshot_to_json(const PullSnapshot& s) {
    nlohmann::json segments = nlohmann::json::array();
    for (const SnapshotSegment& seg : s.segments)
        segments.push_back({{"name", seg.file_name},
                            {"start_lsn", format_lsn(seg.start_lsn)},
                            {"end_lsn", format_lsn(seg.end_lsn)}});
    return nlohmann::json{{"tenant_id", format_id(s.tenant_id)},
                          {"timeline_id", format_id(s.timeline_id)},
                          {"source_node_id", s.source_node},
                          {"flush_lsn", format_lsn(s.flush_lsn)},
                          {"wal_term", s.wal_term},
                          {"timeline_start_lsn", format_lsn(s.timeline_start_lsn)},
                          {"control_file", to_hex(s.control_file)},
                          {"segments", segments}}
        .dump();
}

Result<PullSnapshot> snapshot_from_json(const std::string& text) {
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) return Status::invalid("snapshot is not a JSON object");
    auto str = [&](const char* key) -> Result<std::string> {
        auto it = j.find(key);
        if (it == j.end() || !it->is_string())
            return Status::invalid(std::string("snapshot: missing string field '") + key + "'");
        return it->get<std::string>();
    };
    auto lsn = [&](const nlohmann::json& obj, const char* key) -> Result<Lsn> {
        auto it = obj.find(key);
        if (it == obj.end() || !it->is_string())
            return Status::invalid(std::string("snapshot: missing LSN field '") + key + "'");
        auto v = parse_lsn(it->get<std::string>());
        if (!v) return Status::invalid(std::string("snapshot: '") + key + "' is not an LSN");
        return *v;
    };
    auto uint = [&](const char* key) -> Result<std::uint64_t> {
        auto it = j.find(key);
        if (it == j.end() || !it->is_number_unsigned())
            return Status::invalid(std::string("snapshot: missing number field '") + key + "'");
        return it->get<std::uint64_t>();
    };
    PullSnapshot s;
    auto tenant = str("tenant_id");
    if (!tenant) return tenant.status();
    auto timeline = str("timeline_id");
    if (!timeline) return timeline.status();
    auto tenant_id = parse_id(*tenant);
    auto timeline_id = parse_id(*timeline);
    if (!tenant_id || !timeline_id) return Status::invalid("snapshot: ids must be 32 hex digits");
    s.tenant_id = *tenant_id;
    s.timeline_id = *timeline_id;
    auto node = uint("source_node_id");
    if (!node) return node.status();
    s.source_node = *node;
    auto flush = lsn(j, "flush_lsn");
    if (!flush) return flush.status();
    s.flush_lsn = *flush;
    auto term = uint("wal_term");
    if (!term) return term.status();
    s.wal_term = *term;
    auto start = lsn(j, "timeline_start_lsn");
    if (!start) return start.status();
    s.timeline_start_lsn = *start;
    auto control = str("control_file");
    if (!control) return control.status();
    auto bytes = from_hex(*control);
    if (!bytes) return bytes.status().with_context("snapshot");
    s.control_file = std::move(*bytes);
    auto segs = j.find("segments");
    if (segs == j.end() || !segs->is_array())
        return Status::invalid("snapshot: missing array 'segments'");
    for (const nlohmann::json& e : *segs) {
        if (!e.is_object() || !e.contains("name") || !e["name"].is_string())
            return Status::invalid("snapshot: a segment has no name");
        SnapshotSegment seg;
        seg.file_name = e["name"].get<std::string>();
        auto b = lsn(e, "start_lsn");
        if (!b) return b.status();
        auto en = lsn(e, "end_lsn");
        if (!en) return en.status();
        seg.start_lsn = *b;
        seg.end_lsn = *en;
        s.segments.push_back(seg);
    }
    return s;
}

}  // namespace wp::sk
