// Test doubles shared by the core's unit tests.
#pragma once

#include <string>
#include <vector>

#include "walproposer/acceptor.h"
#include "walproposer/proposer.h"

namespace wp::testing {

// In-memory storage that records calls; unflushed bytes vanish on crash().
// fail_next makes the next storage call fail (a full disk, an EIO).
class TestStorage : public AcceptorStorage {
  public:
    AcceptorDurableState durable;
    Lsn start = 0, written = 0, flushed = 0;
    std::vector<std::uint8_t> bytes;  // [start, written)
    std::vector<std::string> calls;
    bool fail_next = false;
    Status injected(const char* what) {
        calls.push_back(what);
        if (!fail_next) return Status();
        fail_next = false;
        return Status::error(std::string(what) + ": No space left on device");
    }
    Status persist_state(const AcceptorDurableState& s) override {
        Status e = injected("persist");
        if (e.ok()) durable = s;
        return e;
    }
    Status write_wal(Lsn begin, const std::uint8_t* data, std::size_t size) override {
        Status e = injected("write");
        if (!e.ok()) return e;
        if (begin != written) return Status::error("not at end");
        bytes.insert(bytes.end(), data, data + size);
        written += size;
        return Status();
    }
    Status flush_wal() override {
        Status e = injected("flush");
        if (e.ok()) flushed = written;
        return e;
    }
    Status read_wal(Lsn begin, Lsn end, std::vector<std::uint8_t>& out) override {
        calls.push_back("read");
        if (begin < start || end > flushed) return Status::error("read outside WAL");
        out.insert(out.end(), bytes.begin() + static_cast<long>(begin - start),
                   bytes.begin() + static_cast<long>(end - start));
        return Status();
    }
    Status truncate_wal(Lsn end) override {
        Status e = injected("truncate");
        if (!e.ok()) return e;
        if (!start) start = end;
        bytes.resize(end - start);
        written = flushed = end;
        return Status();
    }
    Lsn flush_lsn() const override { return flushed; }
    void crash() {
        written = flushed;
        bytes.resize(written - start);
    }
};

// A primary's WAL where the byte at LSN l is (l & 0xFF).
class PatternWal : public WalReader {
public:
    Status read_wal(Lsn begin, Lsn end, std::vector<std::uint8_t>& out) override {
        for (Lsn l = begin; l < end; ++l) out.push_back(static_cast<std::uint8_t>(l));
        return Status();
    }
};

}  // namespace wp::testing
