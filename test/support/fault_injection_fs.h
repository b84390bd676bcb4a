// An in-memory FileSystem that models what survives a power loss, for
// crash tests of the storage layer.
//
// Model: every file has current bytes and durable bytes; File::sync_data
// makes the current bytes durable. Directory entries (create, rename,
// unlink, mkdir) become durable only when their directory is synced; a
// directory rename moves everything durable below it once the new parent is
// synced; remove_tree is never durable by itself.
// crash_and_restart() drops everything not durable; with torn=true a random
// subset of the un-synced writes (in 4 kB pieces) survives instead, as a
// real disk may write back dirty pages in any order.
// set_crash_after(n): the n-th mutating operation from now fails with
// StatusKind::kCrashed, and so does everything after it until restart;
// files opened before the crash stay dead.
// process_crash(): the daemon process dies (SIGKILL, OOM kill) but the
// machine keeps running: every open File becomes invalid, yet the current
// bytes and directory entries stay, durable or not (the page cache
// survives); a later crash_and_restart() can still drop what was never
// synced.
// inject_error_after(n, err): the n-th mutating operation from now fails
// once with errno `err` (e.g. ENOSPC) without crashing; it has no effect,
// except that a failing pwrite stores the first half of its bytes (a short
// write followed by the error).
//
// Thread-safety: one mutex; fine for tests that use it from many threads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "storage/durable_file.h"

namespace wp::sk {

class FaultInjectionFs final : public FileSystem {
public:
    FaultInjectionFs();
    ~FaultInjectionFs() override;

    void set_crash_after(std::uint64_t mutating_ops);  // 0: never
    bool crashed() const;
    std::uint64_t mutating_ops() const;
    void crash_and_restart(std::mt19937_64& rng, bool torn);
    void process_crash();
    void inject_error_after(std::uint64_t mutating_ops, int err);  // 0: never

    Result<std::unique_ptr<File>> open(const std::string& path, OpenMode mode) override;
    Status rename(const std::string& from, const std::string& to) override;
    Status unlink(const std::string& path) override;
    Status make_directory(const std::string& path) override;
    Status sync_directory(const std::string& path) override;
    Result<std::vector<std::string>> list_directory(const std::string& path) override;
    bool exists(const std::string& path) override;
    bool is_directory(const std::string& path) override;
    Status remove_tree(const std::string& path) override;

    struct Inode;
    struct State;

private:
    std::shared_ptr<State> state_;
};

}  // namespace wp::sk
