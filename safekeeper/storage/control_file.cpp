#include "storage/control_file.h"

#include "walproposer/byte_order.h"
#include "storage/crc32c.h"

namespace wp::sk {
namespace {
constexpr std::size_t kHeaderSize = 12;  // magic, version, payload_len
constexpr std::uint32_t kMaxPayload = 64u << 20;
}  // namespace

std::string encode_control_file(const ControlFileData& d) {
    std::string p_bytes;
    ByteWriter p(p_bytes);
    const AcceptorDurableState& a = d.acceptor;
    p.le64(a.term);
    p.le64(a.commit_lsn);
    p.le64(a.truncate_lsn);
    p.le64(a.timeline_start_lsn);
    p.bytes(a.identity.tenant_id.data(), 16);
    p.bytes(a.identity.timeline_id.data(), 16);
    p.le64(a.identity.system_id);
    p.le32(a.identity.pg_version);
    p.le32(a.identity.pg_timeline);
    p.le32(a.identity.wal_segment_size);
    p.le64(d.wal_scan_start_lsn);
    p.le32(static_cast<std::uint32_t>(a.term_history.size()));
    for (const TermLsn& e : a.term_history) {
        p.le64(e.term);
        p.le64(e.lsn);
    }
    p.le32(static_cast<std::uint32_t>(d.pg_timeline_history.size()));
    p.bytes(d.pg_timeline_history.data(), d.pg_timeline_history.size());
    p.le32(a.min_pg_timeline);  // since version 2
    put_configuration(p, a.configuration);  // since version 3

    std::string out_bytes;
    ByteWriter out(out_bytes);
    out.le32(kControlFileMagic);
    out.le32(kControlFileVersion);
    out.le32(static_cast<std::uint32_t>(p_bytes.size()));
    out.bytes(p_bytes.data(), p_bytes.size());
    out.le32(wp_crc32c(out_bytes.data(), out_bytes.size()));
    return out_bytes;
}

Result<ControlFileData> decode_control_file(const std::string& bytes) {
    if (bytes.size() < kHeaderSize + 4)
        return Status::corrupt("control file too short (" + std::to_string(bytes.size()) + " bytes)");
    ByteReader h(bytes.data(), kHeaderSize);
    std::uint32_t magic = 0, version = 0, len = 0;
    (void)h.le32(magic);
    (void)h.le32(version);
    (void)h.le32(len);
    if (magic != kControlFileMagic) return Status::corrupt("control file has bad magic");
    if (version < kControlFileMinVersion || version > kControlFileVersion)
        return Status::corrupt("control file has unknown format version " +
                               std::to_string(version) + " (this safekeeper reads versions " +
                               std::to_string(kControlFileMinVersion) + " to " +
                               std::to_string(kControlFileVersion) + ")");
    if (len > kMaxPayload || bytes.size() != kHeaderSize + len + 4)
        return Status::corrupt("control file length mismatch (header says " + std::to_string(len) +
                               " payload bytes, file has " + std::to_string(bytes.size()) + ")");
    ByteReader c(bytes.data() + kHeaderSize + len, 4);
    std::uint32_t stored_crc = 0;
    (void)c.le32(stored_crc);
    if (wp_crc32c(bytes.data(), kHeaderSize + len) != stored_crc)
        return Status::corrupt("control file CRC mismatch");

    ControlFileData d;
    AcceptorDurableState& a = d.acceptor;
    ByteReader r(bytes.data() + kHeaderSize, len);
    std::uint32_t n = 0;
    bool ok = r.le64(a.term) && r.le64(a.commit_lsn) && r.le64(a.truncate_lsn) &&
              r.le64(a.timeline_start_lsn) && r.bytes(a.identity.tenant_id.data(), 16) &&
              r.bytes(a.identity.timeline_id.data(), 16) && r.le64(a.identity.system_id) &&
              r.le32(a.identity.pg_version) && r.le32(a.identity.pg_timeline) &&
              r.le32(a.identity.wal_segment_size) && r.le64(d.wal_scan_start_lsn) && r.le32(n);
    if (!ok || n > kMaxTermHistoryEntries) return Status::corrupt("control file payload malformed");
    for (std::uint32_t i = 0; i < n; ++i) {
        TermLsn e;
        if (!r.le64(e.term) || !r.le64(e.lsn))
            return Status::corrupt("control file payload malformed");
        a.term_history.push_back(e);
    }
    std::uint32_t hist_len = 0;
    if (!r.le32(hist_len) || !r.string(d.pg_timeline_history, hist_len))
        return Status::corrupt("control file payload malformed");
    // Version 1 has no fence: 0 (none), written as version 2 at the next persist.
    if (version >= 2 && !r.le32(a.min_pg_timeline))
        return Status::corrupt("control file payload malformed");
    // Versions 1 and 2 have no configuration: generation 0 (none).
    if (version >= 3) {
        Result<Configuration> config = read_configuration(r);
        if (!config) return Status::corrupt("control file configuration: " + config.message());
        a.configuration = std::move(*config);
    }
    if (r.remaining() != 0) return Status::corrupt("control file payload malformed");
    if (!is_well_formed(a.term_history)) return Status::corrupt("control file term history malformed");
    return d;
}

Result<ControlFileData> load_control_file(FileSystem& fs, const std::string& timeline_dir) {
    const std::string path = join_path(timeline_dir, kControlFileName);
    auto bytes = read_whole_file(fs, path);
    if (!bytes) return bytes.status();
    auto d = decode_control_file(*bytes);
    if (!d) return d.status().with_context(path);
    return d;
}

Status store_control_file(FileSystem& fs, const std::string& timeline_dir, const ControlFileData& data) {
    return write_file_atomically(fs, join_path(timeline_dir, kControlFileName), encode_control_file(data));
}

std::string encode_tombstone(const Id128& timeline_id, const Tombstone& tombstone) {
    std::string w_bytes;
    ByteWriter w(w_bytes);
    w.le32(kTombstoneMagic);
    w.le32(kTombstoneVersion);
    w.bytes(timeline_id.data(), timeline_id.size());
    w.le64(tombstone.term);
    w.le32(tombstone.min_pg_timeline);
    put_configuration(w, tombstone.configuration);
    w.le32(wp_crc32c(w_bytes.data(), w_bytes.size()));
    return w_bytes;
}

Result<Tombstone> decode_tombstone(const std::string& bytes, const Id128& timeline_id) {
    // Version 1: 32-byte body (no fence); version 2: 36-byte body; version 3:
    // 36 bytes and the configuration.
    if (bytes.size() < 36)
        return Status::corrupt("tombstone has " + std::to_string(bytes.size()) +
                               " bytes (expected at least 36)");
    const std::size_t body = bytes.size() - 4;
    ByteReader r(bytes.data(), body);
    std::uint32_t magic = 0, version = 0;
    Id128 id{};
    Tombstone tombstone;
    (void)(r.le32(magic) && r.le32(version) && r.bytes(id.data(), id.size()) &&
           r.le64(tombstone.term));
    if (magic != kTombstoneMagic) return Status::corrupt("tombstone has bad magic");
    if (!((version == 1 && body == 32) || (version == 2 && body == 36) ||
          (version == 3 && body > 36)))
        return Status::corrupt("tombstone has unknown format version " + std::to_string(version) +
                               " for its size");
    if (get_le32(bytes.data() + body) != wp_crc32c(bytes.data(), body))
        return Status::corrupt("tombstone CRC mismatch");
    if (id != timeline_id) return Status::corrupt("tombstone names another timeline");
    if (version >= 2) (void)r.le32(tombstone.min_pg_timeline);
    if (version >= 3) {
        Result<Configuration> config = read_configuration(r);
        if (!config) return Status::corrupt("tombstone configuration: " + config.message());
        tombstone.configuration = std::move(*config);
        if (r.remaining() != 0) return Status::corrupt("tombstone has trailing bytes");
    }
    return tombstone;
}

Result<std::optional<Tombstone>> load_tombstone(FileSystem& fs, const std::string& path,
                                                const Id128& timeline_id) {
    if (!fs.exists(path)) return std::optional<Tombstone>();
    auto bytes = read_whole_file(fs, path);
    if (!bytes) return bytes.status();
    auto tombstone = decode_tombstone(*bytes, timeline_id);
    if (!tombstone) return tombstone.status().with_context(path);
    return std::optional<Tombstone>(*tombstone);
}

Status store_tombstone(FileSystem& fs, const std::string& path, const Id128& timeline_id,
                       const Tombstone& tombstone) {
    return write_file_atomically(fs, path, encode_tombstone(timeline_id, tombstone));
}

}  // namespace wp::sk
