// See memory_wal.h.
#include "memory_wal.h"

namespace wp::testing {

MemoryWal MemoryWal::generate(Lsn base, Lsn end, const std::function<std::uint8_t(Lsn)>& byte_at) {
    MemoryWal wal(base);
    wal.bytes.reserve(end - base);
    for (Lsn l = base; l < end; ++l) wal.bytes.push_back(byte_at(l));
    return wal;
}

MemoryWal MemoryWal::pattern(Lsn end) {
    return generate(kInvalidLsn, end, [](Lsn l) { return static_cast<std::uint8_t>(l); });
}

Status MemoryWal::read_wal(Lsn begin, Lsn end, std::vector<std::uint8_t>& out) {
    if (begin < base || end < begin || end > this->end())
        return Status::error("WAL [" + format_lsn(begin) + ", " + format_lsn(end) +
                             ") not available");
    out.insert(out.end(), bytes.begin() + static_cast<long>(begin - base),
               bytes.begin() + static_cast<long>(end - base));
    return Status();
}

}  // namespace wp::testing
