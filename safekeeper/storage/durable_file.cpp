#include "storage/durable_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ftw.h>

namespace wp::sk {
namespace {

class PosixFile final : public File {
public:
    PosixFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
    ~PosixFile() override {
        if (fd_ >= 0) ::close(fd_);
    }
    PosixFile(const PosixFile&) = delete;
    PosixFile& operator=(const PosixFile&) = delete;

    Status pwrite_all(const void* data, std::size_t len, std::uint64_t offset) override {
        const auto* p = static_cast<const char*>(data);
        while (len > 0) {
            ssize_t n = ::pwrite(fd_, p, len, static_cast<off_t>(offset));
            if (n < 0) {
                if (errno == EINTR) continue;
                return Status::from_errno("pwrite " + path_, errno);
            }
            if (n == 0) return Status::error(StatusKind::kIoError, "pwrite " + path_ + ": wrote 0 bytes");
            p += n;
            len -= static_cast<std::size_t>(n);
            offset += static_cast<std::uint64_t>(n);
        }
        return Status();
    }

    Result<std::size_t> pread_upto(void* buf, std::size_t len, std::uint64_t offset) override {
        auto* p = static_cast<char*>(buf);
        std::size_t done = 0;
        while (done < len) {
            ssize_t n = ::pread(fd_, p + done, len - done, static_cast<off_t>(offset + done));
            if (n < 0) {
                if (errno == EINTR) continue;
                return Status::from_errno("pread " + path_, errno);
            }
            if (n == 0) break;  // end of file
            done += static_cast<std::size_t>(n);
        }
        return done;
    }

    Status sync_data() override {
        while (::fdatasync(fd_) != 0) {
            if (errno == EINTR) continue;
            return Status::from_errno("fdatasync " + path_, errno);
        }
        return Status();
    }

    Status allocate(std::uint64_t offset, std::uint64_t len) override {
        int rc = ::posix_fallocate(fd_, static_cast<off_t>(offset), static_cast<off_t>(len));
        if (rc == 0) return Status();
        if (rc != EOPNOTSUPP && rc != EINVAL) return Status::from_errno("fallocate " + path_, rc);
        auto cur = this->size();
        if (!cur) return cur.status();
        if (*cur >= offset + len) return Status();
        const std::uint64_t from = std::max(*cur, offset);
        if (from > *cur) WP_RETURN_IF_ERROR(extend_sparse(from));
        return write_zeros(*this, from, offset + len - from);
    }

    Status extend_sparse(std::uint64_t size) override {
        auto cur = this->size();
        if (!cur) return cur.status();
        if (*cur >= size) return Status();
        while (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
            if (errno == EINTR) continue;
            return Status::from_errno("ftruncate " + path_, errno);
        }
        return Status();
    }

    Result<Region> data_region(std::uint64_t offset) override {
        auto sz = this->size();
        if (!sz) return sz.status();
        if (offset >= *sz) return Region{*sz, *sz};
        const off_t begin = ::lseek(fd_, static_cast<off_t>(offset), SEEK_DATA);
        if (begin < 0) {
            if (errno == ENXIO) return Region{*sz, *sz};  // only holes follow
            if (errno == EINVAL) return Region{offset, *sz};  // SEEK_DATA not supported
            return Status::from_errno("lseek SEEK_DATA " + path_, errno);
        }
        const off_t end = ::lseek(fd_, begin, SEEK_HOLE);
        if (end < 0) return Status::from_errno("lseek SEEK_HOLE " + path_, errno);
        return Region{static_cast<std::uint64_t>(begin), static_cast<std::uint64_t>(end)};
    }

    Result<std::uint64_t> size() override {
        struct stat st;
        if (::fstat(fd_, &st) != 0) return Status::from_errno("fstat " + path_, errno);
        return static_cast<std::uint64_t>(st.st_size);
    }

private:
    int fd_;
    std::string path_;
};

class PosixFileSystem final : public FileSystem {
public:
    Result<std::unique_ptr<File>> open(const std::string& path, OpenMode mode) override {
        int flags = O_CLOEXEC;
        switch (mode) {
            case OpenMode::kReadOnly: flags |= O_RDONLY; break;
            case OpenMode::kReadWrite: flags |= O_RDWR; break;
            case OpenMode::kCreateExclusive: flags |= O_RDWR | O_CREAT | O_EXCL; break;
            case OpenMode::kCreateTruncate: flags |= O_RDWR | O_CREAT | O_TRUNC; break;
        }
        int fd;
        do {
            fd = ::open(path.c_str(), flags, 0600);
        } while (fd < 0 && errno == EINTR);
        if (fd < 0) return Status::from_errno("open " + path, errno);
        return std::unique_ptr<File>(new PosixFile(fd, path));
    }

    Status rename(const std::string& from, const std::string& to) override {
        if (::rename(from.c_str(), to.c_str()) != 0)
            return Status::from_errno("rename " + from + " -> " + to, errno);
        return Status();
    }

    Status unlink(const std::string& path) override {
        if (::unlink(path.c_str()) != 0) return Status::from_errno("unlink " + path, errno);
        return Status();
    }

    Status make_directory(const std::string& path) override {
        if (::mkdir(path.c_str(), 0700) != 0) {
            if (errno == EEXIST && is_directory(path)) return Status();
            return Status::from_errno("mkdir " + path, errno);
        }
        return Status();
    }

    Status sync_directory(const std::string& path) override {
        int fd;
        do {
            fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        } while (fd < 0 && errno == EINTR);
        if (fd < 0) return Status::from_errno("open directory " + path, errno);
        int rc;
        do {
            rc = ::fsync(fd);
        } while (rc != 0 && errno == EINTR);
        int err = errno;
        ::close(fd);
        if (rc != 0) return Status::from_errno("fsync directory " + path, err);
        return Status();
    }

    Result<std::vector<std::string>> list_directory(const std::string& path) override {
        DIR* dir = ::opendir(path.c_str());
        if (!dir) return Status::from_errno("opendir " + path, errno);
        std::vector<std::string> names;
        errno = 0;
        while (struct dirent* ent = ::readdir(dir)) {
            std::string name = ent->d_name;
            if (name != "." && name != "..") names.push_back(std::move(name));
        }
        int err = errno;
        ::closedir(dir);
        if (err != 0) return Status::from_errno("readdir " + path, err);
        return names;
    }

    bool exists(const std::string& path) override {
        struct stat st;
        return ::lstat(path.c_str(), &st) == 0;
    }

    bool is_directory(const std::string& path) override {
        struct stat st;
        return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    }

    Status remove_tree(const std::string& path) override {
        auto remove_one = [](const char* p, const struct stat*, int, struct FTW*) -> int {
            return ::remove(p);
        };
        if (::nftw(path.c_str(), remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
            return Status::from_errno("remove " + path, errno);
        return Status();
    }
};

}  // namespace

FileSystem& real_file_system() {
    static PosixFileSystem fs;
    return fs;
}

std::string parent_directory(const std::string& path) {
    auto slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

std::string join_path(const std::string& dir, const std::string& name) {
    if (dir.empty()) return name;
    if (dir.back() == '/') return dir + name;
    return dir + "/" + name;
}

Status sync_parent_directory(FileSystem& fs, const std::string& path) {
    return fs.sync_directory(parent_directory(path));
}

Status durable_rename(FileSystem& fs, const std::string& from, const std::string& to) {
    {
        auto file = fs.open(from, OpenMode::kReadWrite);
        if (!file) return file.status();
        WP_RETURN_IF_ERROR((*file)->sync_data());
    }
    WP_RETURN_IF_ERROR(fs.rename(from, to));
    WP_RETURN_IF_ERROR(sync_parent_directory(fs, to));
    if (parent_directory(from) != parent_directory(to))
        WP_RETURN_IF_ERROR(sync_parent_directory(fs, from));
    return Status();
}

Status durable_unlink(FileSystem& fs, const std::string& path) {
    WP_RETURN_IF_ERROR(fs.unlink(path));
    return sync_parent_directory(fs, path);
}

Status make_directory_durably(FileSystem& fs, const std::string& path) {
    WP_RETURN_IF_ERROR(fs.make_directory(path));
    return sync_parent_directory(fs, path);
}

namespace {

// A step before the rename failed: the target is untouched; the temporary
// file goes (best effort: a half-allocated one would hold space).
Status discard_tmp(FileSystem& fs, const std::string& tmp, Status failure) {
    if (fs.exists(tmp)) (void)fs.unlink(tmp);
    return failure;
}

// The directory fsync after a rename: its failure leaves the directory in an
// unknown state, so it never reads as a retryable out-of-space or
// out-of-resources failure (its errno is dropped).
Status sync_after_rename(FileSystem& fs, const std::string& path) {
    Status s = sync_parent_directory(fs, path);
    if (s.ok() || s.sys_errno() == 0) return s;
    return Status::error(StatusKind::kIoError, s.message());
}

}  // namespace

bool is_out_of_space(const Status& s) {
    return !s.ok() && (s.sys_errno() == ENOSPC || s.sys_errno() == EDQUOT);
}

bool is_out_of_resources(const Status& s) {
    return !s.ok() && (s.sys_errno() == EMFILE || s.sys_errno() == ENFILE || s.sys_errno() == ENOMEM);
}

Status write_file_atomically(FileSystem& fs, const std::string& path, const std::string& contents) {
    const std::string tmp = path + ".tmp";
    Status s;
    {
        auto file = fs.open(tmp, OpenMode::kCreateTruncate);
        if (!file) return file.status();
        s = (*file)->pwrite_all(contents.data(), contents.size(), 0);
        if (s) s = (*file)->sync_data();
    }
    if (s) s = fs.rename(tmp, path);
    if (!s) return discard_tmp(fs, tmp, s);
    return sync_after_rename(fs, path);
}

Status write_zeros(File& file, std::uint64_t offset, std::uint64_t len) {
    static const std::string kZeros(1 << 20, '\0');
    for (std::uint64_t done = 0; done < len;) {
        std::size_t chunk = static_cast<std::size_t>(std::min<std::uint64_t>(kZeros.size(), len - done));
        WP_RETURN_IF_ERROR(file.pwrite_all(kZeros.data(), chunk, offset + done));
        done += chunk;
    }
    return Status();
}

Status create_zero_filled_file(FileSystem& fs, const std::string& path, std::uint64_t size,
                               ZeroFill how) {
    if (fs.exists(path)) return Status::invalid("create " + path + ": file exists");
    const std::string tmp = path + ".tmp";
    Status s;
    {
        auto file = fs.open(tmp, OpenMode::kCreateTruncate);
        if (!file) return file.status();
        switch (how) {
            case ZeroFill::kAllocate: s = (*file)->allocate(0, size); break;
            case ZeroFill::kWriteZeros: s = write_zeros(**file, 0, size); break;
            case ZeroFill::kSparse: s = (*file)->extend_sparse(size); break;
        }
        if (s) s = (*file)->sync_data();
    }
    if (s) s = fs.rename(tmp, path);
    if (!s) return discard_tmp(fs, tmp, s);
    return sync_after_rename(fs, path);
}

Result<std::string> read_whole_file(FileSystem& fs, const std::string& path) {
    auto file = fs.open(path, OpenMode::kReadOnly);
    if (!file) return file.status();
    auto size = (*file)->size();
    if (!size) return size.status();
    std::string out(static_cast<std::size_t>(*size), '\0');
    auto n = (*file)->pread_upto(out.data(), out.size(), 0);
    if (!n) return n.status();
    out.resize(*n);
    return out;
}

}  // namespace wp::sk
