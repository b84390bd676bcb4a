// See memory_acceptor_storage.h.
#include "memory_acceptor_storage.h"

#include <cstring>

namespace wp::testing {

Status MemoryAcceptorStorage::record(const char* call) {
    calls.push_back(call);
    if (!fail_next) return Status();
    fail_next = false;
    return Status::error(std::string(call) + ": No space left on device");
}

Status MemoryAcceptorStorage::persist_state(const AcceptorDurableState& state) {
    Status s = record("persist");
    if (s.ok()) durable = state;
    return s;
}

Status MemoryAcceptorStorage::write_wal(Lsn begin, const std::uint8_t* data, std::size_t size) {
    Status s = record("write");
    if (!s.ok()) return s;
    if (!start || begin != written_end()) return Status::error("write not at end of WAL");
    bytes.insert(bytes.end(), data, data + size);
    return Status();
}

Status MemoryAcceptorStorage::flush_wal() {
    Status s = record("flush");
    if (s.ok()) flushed_end = synced_end = written_end();
    return s;
}

Status MemoryAcceptorStorage::read_wal(Lsn begin, Lsn end, std::vector<std::uint8_t>& out) {
    calls.push_back("read");
    if (!start || begin < start || end > flushed_end || begin > end)
        return Status::error("read outside the stored WAL");
    out.insert(out.end(), bytes.begin() + static_cast<long>(begin - start),
               bytes.begin() + static_cast<long>(end - start));
    return Status();
}

Status MemoryAcceptorStorage::truncate_wal(Lsn end) {
    Status s = record("truncate");
    if (!s.ok()) return s;
    if (!start || end < start) {
        start = end;
        bytes.clear();
    } else {
        if (end > written_end()) return Status::error("truncate beyond end of WAL");
        bytes.resize(end - start);
    }
    flushed_end = synced_end = end;
    return Status();
}

void MemoryAcceptorStorage::recover(bool sync_first) {
    if (sync_first) synced_end = written_end();
    flushed_end = written_end();
}

void MemoryAcceptorStorage::power_loss() {
    if (start) bytes.resize(synced_end - start);
    flushed_end = synced_end;
}

bool MemoryAcceptorStorage::durable_matches(const std::vector<std::uint8_t>& wal, Lsn wal_base,
                                            Lsn from, Lsn to) const {
    if (from >= to) return true;
    if (from < start || to > synced_end || from < wal_base) return false;
    if (to - wal_base > wal.size()) return false;
    return std::memcmp(bytes.data() + (from - start), wal.data() + (from - wal_base), to - from) ==
           0;
}

}  // namespace wp::testing
