#include "storage/wal_format.h"

#include <cstdio>

namespace wp::sk {

bool is_valid_segment_size(std::uint64_t s) {
    return s >= (1u << 20) && s <= (1u << 30) && (s & (s - 1)) == 0;
}

std::string wal_segment_file_name(std::uint32_t pg_timeline, SegmentNumber segno,
                                  std::uint32_t segment_size) {
    const std::uint64_t per_xlogid = 0x100000000ULL / segment_size;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%08X%08X%08X", pg_timeline,
                  static_cast<unsigned>(segno / per_xlogid), static_cast<unsigned>(segno % per_xlogid));
    return buf;
}

namespace {
std::optional<std::uint32_t> parse_upper_hex8(std::string_view s) {
    std::uint32_t v = 0;
    for (char c : s) {
        unsigned d;
        if (c >= '0' && c <= '9') d = static_cast<unsigned>(c - '0');
        else if (c >= 'A' && c <= 'F') d = static_cast<unsigned>(c - 'A' + 10);
        else return std::nullopt;
        v = (v << 4) | d;
    }
    return v;
}
}  // namespace

std::optional<ParsedSegmentName> parse_wal_segment_file_name(std::string_view name,
                                                             std::uint32_t segment_size) {
    ParsedSegmentName out;
    constexpr std::string_view kPartial = ".partial";
    if (name.size() == 24 + kPartial.size() && name.substr(24) == kPartial) {
        out.partial = true;
        name = name.substr(0, 24);
    }
    if (name.size() != 24) return std::nullopt;
    auto tli = parse_upper_hex8(name.substr(0, 8));
    auto hi = parse_upper_hex8(name.substr(8, 8));
    auto lo = parse_upper_hex8(name.substr(16, 8));
    if (!tli || !hi || !lo) return std::nullopt;
    const std::uint64_t per_xlogid = 0x100000000ULL / segment_size;
    if (*lo >= per_xlogid) return std::nullopt;
    out.pg_timeline = *tli;
    out.segno = static_cast<std::uint64_t>(*hi) * per_xlogid + *lo;
    return out;
}

}  // namespace wp::sk
