// A FileSystem over the real one that can simulate a power loss in a running
// daemon: TEST BUILDS ONLY (build/safekeeper-powerloss, compiled with
// WP_POWER_LOSS_FS; the production daemon never contains it).
//
// Why: SIGKILL is not power loss. A killed process leaves its written but
// unsynced data in the page cache, so a crash test with SIGKILL passes even
// when an fsync is missing. This layer remembers, for every change not yet
// made durable by the rules of durable_file.h, how to undo it:
//  * File::pwrite_all / allocate: the bytes it overwrote and the size the
//    file had at its last sync_data(); sync_data() forgets them;
//  * create, rename, unlink, mkdir of a directory entry: the inverse
//    operation (a replaced or removed file is kept under a hidden hard link
//    until its directory is synced); sync_directory() forgets them.
// lose_power_and_exit() undoes all of it, newest first (file contents, then
// directory entries), and ends the process with _exit(kPowerLossExitCode):
// what is left on disk is what a power loss that dropped every unsynced
// write would have left. remove_tree is passed through (it is only used on
// trees a durable rename already made unreachable).
//
// Thread-safety: one mutex serialises every operation, including the File
// operations, so the undo never races a write. Slow; a test build only.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "storage/durable_file.h"

namespace wp::sk {

constexpr int kPowerLossExitCode = 99;

class PowerLossFs final : public FileSystem {
public:
    // `base` is the real file system; it must outlive this object.
    explicit PowerLossFs(FileSystem& base);
    ~PowerLossFs() override;

    // Undoes every change that is not durable and exits the process. Holds
    // the lock until the end, so no other thread writes meanwhile.
    [[noreturn]] void lose_power_and_exit();

    Result<std::unique_ptr<File>> open(const std::string& path, OpenMode mode) override;
    Status rename(const std::string& from, const std::string& to) override;
    Status unlink(const std::string& path) override;
    Status make_directory(const std::string& path) override;
    Status sync_directory(const std::string& path) override;
    Result<std::vector<std::string>> list_directory(const std::string& path) override;
    bool exists(const std::string& path) override;
    bool is_directory(const std::string& path) override;
    Status remove_tree(const std::string& path) override;

    // Unsynced contents of one file (shared by its open Files), keyed by
    // its current path.
    struct ContentUndo {
        std::uint64_t synced_size = 0;
        struct Write {
            std::uint64_t offset;
            std::string old_bytes;  // what the write replaced (within synced_size)
        };
        std::vector<Write> writes;  // oldest first
    };

private:
    friend class PowerLossFile;
    // A directory entry change not yet made durable, and how to undo it.
    struct EntryUndo {
        enum class Kind { kCreated, kRenamed, kUnlinked, kMadeDirectory } kind;
        std::string path;      // created / unlinked / made path; rename target
        std::string from;      // rename source
        std::string backup;    // hidden hard link of a replaced or removed file ("" = none)
        std::string directory; // the directory whose sync makes it durable
        std::string directory2; // second directory (rename across directories)
    };
    std::shared_ptr<ContentUndo> content_for(const std::string& path);
    void move_content(const std::string& from, const std::string& to);
    Result<std::string> keep_backup(const std::string& path);

    FileSystem& base_;
    std::mutex mutex_;
    std::map<std::string, std::shared_ptr<ContentUndo>> contents_;
    std::vector<EntryUndo> entries_;  // oldest first
    std::uint64_t backup_counter_ = 0;
};

}  // namespace wp::sk
