#include "wal_window.h"

#include <algorithm>
#include <cstring>

namespace wp::pg {

Lsn WalWindow::copy(Lsn begin, Lsn end, std::vector<std::uint8_t>& out) const {
    if (begin < begin_ || begin >= end_) return begin;
    end = std::min(end, end_);
    while (begin < end) {
        const std::size_t offset = static_cast<std::size_t>(begin % kBytes);
        const std::size_t n = static_cast<std::size_t>(std::min<Lsn>(kBytes - offset, end - begin));
        out.insert(out.end(), ring_.data() + offset, ring_.data() + offset + n);
        begin += n;
    }
    return end;
}

void WalWindow::remember(Lsn begin, const std::uint8_t* bytes, std::size_t size) {
    const Lsn end = begin + size;
    const bool empty = begin_ == end_;
    if (!empty && end <= end_) return;  // nothing past the window's end
    if (empty || begin > end_) begin_ = end_ = begin;  // not contiguous: start over here
    if (ring_.empty()) ring_.resize(kBytes);
    // Only the part past the window's end is new, and at most kBytes of it.
    Lsn from = std::max<Lsn>(end_, end - std::min<Lsn>(size, kBytes));
    const std::uint8_t* src = bytes + (from - begin);
    while (from < end) {
        const std::size_t offset = static_cast<std::size_t>(from % kBytes);
        const std::size_t n = static_cast<std::size_t>(std::min<Lsn>(kBytes - offset, end - from));
        std::memcpy(ring_.data() + offset, src, n);
        src += n;
        from += n;
    }
    end_ = end;
    if (end_ - begin_ > kBytes) begin_ = end_ - kBytes;
}

}  // namespace wp::pg
