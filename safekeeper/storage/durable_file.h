// The one module through which the safekeeper touches files.
//
// Two layers:
//  * FileSystem / File: a minimal virtual file API. real_file_system() is
//    POSIX (write-all loops that handle EINTR and short writes, fdatasync,
//    directory fsync). Tests substitute a fault-injecting implementation
//    (fault_injection_fs.h) that loses everything not yet made durable when
//    it simulates a crash.
//  * Durable helpers built on it (durable_rename, write_file_atomically,
//    create_zero_filled_file, ...). Each states what is durable on return.
//
// Durability rules that every caller relies on:
//  * File::pwrite_all is NOT durable; File::sync_data makes every completed
//    write to that file, and its size, durable.
//  * rename / unlink / create of a directory entry is durable only after
//    sync_directory() of the directory that holds it.
//
// Thread-safety: real_file_system() is stateless and thread-safe. A File
// may be used from one thread at a time (pwrite/pread at distinct offsets
// from several threads are fine for the POSIX implementation).
// Errors are values (Status / Result); nothing here throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "walproposer/result.h"

namespace wp::sk {

class File {
public:
    virtual ~File() = default;
    // Writes all `len` bytes at `offset`, looping over short writes and
    // EINTR. Not durable until sync_data().
    virtual Status pwrite_all(const void* data, std::size_t len, std::uint64_t offset) = 0;
    // Reads up to `len` bytes at `offset`; fewer only at end of file.
    virtual Result<std::size_t> pread_upto(void* buf, std::size_t len, std::uint64_t offset) = 0;
    // fdatasync: every completed write and the file size are durable on return.
    virtual Status sync_data() = 0;
    virtual Result<std::uint64_t> size() = 0;
    // Reserves disk blocks for [offset, offset + len), extending the file
    // if it is shorter; the new bytes read as zeros and existing ones are
    // unchanged (posix_fallocate; where that is not supported, zeros are
    // written past the current end only). Not durable until sync_data().
    virtual Status allocate(std::uint64_t offset, std::uint64_t len) = 0;
    // Extends the file to `size` bytes without reserving blocks (a sparse
    // tail that reads as zeros); nothing if it is that long already. Not
    // durable until sync_data().
    virtual Status extend_sparse(std::uint64_t size) = 0;
    // The first region at or after `offset` that may hold data: [begin, end).
    // Everything between `offset` and begin, and from end to the next
    // region, reads as zeros (holes, or blocks reserved but never written).
    // begin == end == size() when nothing follows. The default (and any
    // file system that cannot tell) is one region up to size().
    struct Region {
        std::uint64_t begin = 0, end = 0;
    };
    virtual Result<Region> data_region(std::uint64_t offset) {
        auto sz = size();
        if (!sz) return sz.status();
        return offset < *sz ? Region{offset, *sz} : Region{*sz, *sz};
    }
};

enum class OpenMode {
    kReadOnly,
    kReadWrite,        // must exist
    kCreateExclusive,  // O_CREAT|O_EXCL, read-write
    kCreateTruncate,   // O_CREAT|O_TRUNC, read-write
};

class FileSystem {
public:
    virtual ~FileSystem() = default;
    virtual Result<std::unique_ptr<File>> open(const std::string& path, OpenMode mode) = 0;
    // rename(2): atomically replaces `to`. Durable after sync_directory(parent).
    virtual Status rename(const std::string& from, const std::string& to) = 0;
    // unlink(2). Durable after sync_directory(parent). ENOENT is an error (kNotFound).
    virtual Status unlink(const std::string& path) = 0;
    // mkdir(2) with mode 0700; an existing directory is ok. Durable after
    // sync_directory(parent).
    virtual Status make_directory(const std::string& path) = 0;
    // fsync of the directory itself (its entries).
    virtual Status sync_directory(const std::string& path) = 0;
    // Names of the entries (no "." / ".."), unsorted.
    virtual Result<std::vector<std::string>> list_directory(const std::string& path) = 0;
    virtual bool exists(const std::string& path) = 0;
    virtual bool is_directory(const std::string& path) = 0;
    // Removes a directory and everything below it (rm -rf). Not durable by
    // itself; used only on trees already made unreachable by a durable rename.
    virtual Status remove_tree(const std::string& path) = 0;
};

// The process-wide POSIX file system.
FileSystem& real_file_system();

// "a/b/c" -> "a/b"; "c" -> ".".
std::string parent_directory(const std::string& path);
std::string join_path(const std::string& dir, const std::string& name);

// fsync of the directory that holds `path`.
Status sync_parent_directory(FileSystem& fs, const std::string& path);

// sync_data of `from`, rename to `to`, fsync of the parent directory (both
// parents if they differ). On return the new name is durable.
Status durable_rename(FileSystem& fs, const std::string& from, const std::string& to);

// unlink + fsync of the parent directory. On return the removal is durable.
Status durable_unlink(FileSystem& fs, const std::string& path);

// mkdir (ok if it exists) + fsync of the parent. On return the directory is durable.
Status make_directory_durably(FileSystem& fs, const std::string& path);

// Replaces `path` with `contents` atomically: writes `path`.tmp, syncs it,
// renames it over `path`, syncs the directory. After a crash at any
// instant, `path` holds either the old or the new contents in full. On
// return the new contents are durable. A failure before the rename removes
// the temporary file (best effort) and leaves `path` as it was.
Status write_file_atomically(FileSystem& fs, const std::string& path, const std::string& contents);

// How create_zero_filled_file makes its zeros.
enum class ZeroFill {
    kAllocate,    // blocks reserved (File::allocate), none written
    kWriteZeros,  // zeros written (write_zeros): every block allocated and written
    kSparse,      // no blocks (File::extend_sparse): disk use grows with what is written
};

// Creates `path` of `size` zero bytes so that a crash never leaves a
// half-created file under that name: makes `path`.tmp as `how` says, syncs
// it, renames it to `path`, syncs the directory. Fails if `path` exists. A
// failure before the rename removes the temporary file (best effort).
// On return the file is durable.
Status create_zero_filled_file(FileSystem& fs, const std::string& path, std::uint64_t size,
                               ZeroFill how = ZeroFill::kAllocate);

// True for a failure that only says the file system is full (ENOSPC,
// EDQUOT) and that write_file_atomically / create_zero_filled_file report
// only for steps before their rename: the old file is untouched and the
// temporary one is removed, so the caller may retry later. A failure of the
// directory fsync after the rename never counts (its errno is dropped).
bool is_out_of_space(const Status& s);

// True when `s` failed for lack of a process or system resource that may be
// back later: file descriptors (EMFILE, ENFILE) or memory (ENOMEM).
// write_file_atomically and create_zero_filled_file report these (and out
// of space) only when nothing was changed: a failure after their rename
// comes without its errno.
bool is_out_of_resources(const Status& s);

// Writes `len` zero bytes at `offset` (not durable until sync_data()).
Status write_zeros(File& file, std::uint64_t offset, std::uint64_t len);

// Reads a whole (small) file.
Result<std::string> read_whole_file(FileSystem& fs, const std::string& path);

}  // namespace wp::sk
