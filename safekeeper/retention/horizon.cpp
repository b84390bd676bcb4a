#include "retention/horizon.h"

#include <algorithm>
#include <cctype>
#include <limits>

#include "storage/wal_format.h"

namespace wp::sk {

RetentionDecision decide_retention(const RetentionInput& in) {
    RetentionDecision d;
    if (!is_valid_segment_size(in.segment_size) || in.truncate_lsn == kInvalidLsn ||
        in.commit_lsn == kInvalidLsn)
        return d;
    Lsn horizon = std::min(in.truncate_lsn, in.commit_lsn);
    // A slot below the timeline start has lost WAL already (its consumer
    // gets "already removed"); it must not stop removal for good.
    auto holds = [&](const SlotData& s) {
        return !s.invalidated && s.restart_lsn != kInvalidLsn && s.restart_lsn >= in.timeline_start;
    };
    for (const SlotData& s : in.slots)
        if (holds(s)) horizon = std::min(horizon, s.restart_lsn);
    if (in.keep > 0) horizon = std::min(horizon, in.flush_lsn > in.keep ? in.flush_lsn - in.keep : 0);
    if (in.max_retention > 0 && in.flush_lsn > in.max_retention &&
        in.flush_lsn - in.max_retention > horizon) {
        const Lsn floor = std::min(in.flush_lsn - in.max_retention, in.commit_lsn);
        if (floor > horizon) {
            horizon = floor;
            d.capped = true;
            for (const SlotData& s : in.slots)
                if (holds(s) && s.restart_lsn < floor) d.cut_off_slots.push_back(s.name);
            d.member_cut_off = in.truncate_lsn < floor;
        }
    }
    d.horizon = horizon;
    if (in.scan_start == kInvalidLsn) return d;
    const Lsn keep_from = std::min(horizon, in.scan_start);
    const Lsn start = segment_start(segment_of(keep_from, in.segment_size), in.segment_size);
    if (start > in.timeline_start) d.remove_below = start;
    return d;
}

Result<std::uint64_t> parse_byte_size(const std::string& text) {
    std::string t;
    for (char c : text) t.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    if (t == "off") return std::uint64_t{0};
    std::size_t i = 0;
    std::uint64_t n = 0;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') {
        if (n > (std::numeric_limits<std::uint64_t>::max() - 9) / 10)
            return Status::invalid("size \"" + text + "\" is too large");
        n = n * 10 + static_cast<std::uint64_t>(t[i++] - '0');
    }
    const std::string unit = t.substr(i);
    int shift = -1;
    if (unit.empty() || unit == "b") shift = 0;
    if (unit == "kb") shift = 10;
    if (unit == "mb") shift = 20;
    if (unit == "gb") shift = 30;
    if (unit == "tb") shift = 40;
    if (i == 0 || shift < 0)
        return Status::invalid("invalid size \"" + text +
                               "\": expected off, or a number with an optional unit B, kB, MB, "
                               "GB or TB (e.g. 10GB)");
    if (shift && n > (std::numeric_limits<std::uint64_t>::max() >> shift))
        return Status::invalid("size \"" + text + "\" is too large");
    return n << shift;
}

}  // namespace wp::sk
