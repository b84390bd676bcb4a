#include "support/power_loss_fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

namespace wp::sk {

namespace {

constexpr const char kBackupPrefix[] = ".powerloss-backup-";

bool is_backup_name(const std::string& name) { return name.rfind(kBackupPrefix, 0) == 0; }

bool path_exists(const std::string& path) {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0;
}

std::uint64_t file_size_or_zero(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

}  // namespace

// A File whose writes can be undone until sync_data().
class PowerLossFile final : public File {
public:
    PowerLossFile(std::mutex& mutex, std::unique_ptr<File> base,
                  std::shared_ptr<PowerLossFs::ContentUndo> undo)
        : mutex_(mutex), base_(std::move(base)), undo_(std::move(undo)) {}

    Status pwrite_all(const void* data, std::size_t len, std::uint64_t offset) override {
        std::lock_guard<std::mutex> lock(mutex_);
        if (offset < undo_->synced_size) {
            const std::uint64_t end = std::min<std::uint64_t>(offset + len, undo_->synced_size);
            std::string old(static_cast<std::size_t>(end - offset), '\0');
            auto got = base_->pread_upto(old.data(), old.size(), offset);
            if (!got) return got.status();
            old.resize(*got);
            undo_->writes.push_back(PowerLossFs::ContentUndo::Write{offset, std::move(old)});
        }
        return base_->pwrite_all(data, len, offset);
    }
    Result<std::size_t> pread_upto(void* buf, std::size_t len, std::uint64_t offset) override {
        std::lock_guard<std::mutex> lock(mutex_);
        return base_->pread_upto(buf, len, offset);
    }
    Status sync_data() override {
        std::lock_guard<std::mutex> lock(mutex_);
        Status s = base_->sync_data();
        if (!s) return s;
        auto size = base_->size();
        if (!size) return size.status();
        undo_->writes.clear();
        undo_->synced_size = *size;
        return s;
    }
    Result<std::uint64_t> size() override {
        std::lock_guard<std::mutex> lock(mutex_);
        return base_->size();
    }
    Status allocate(std::uint64_t offset, std::uint64_t len) override {
        std::lock_guard<std::mutex> lock(mutex_);
        return base_->allocate(offset, len);  // growth past synced_size is cut on power loss
    }
    Status extend_sparse(std::uint64_t size) override {
        std::lock_guard<std::mutex> lock(mutex_);
        return base_->extend_sparse(size);  // likewise
    }
    Result<Region> data_region(std::uint64_t offset) override {
        std::lock_guard<std::mutex> lock(mutex_);
        return base_->data_region(offset);
    }

private:
    std::mutex& mutex_;
    std::unique_ptr<File> base_;
    std::shared_ptr<PowerLossFs::ContentUndo> undo_;
};

PowerLossFs::PowerLossFs(FileSystem& base) : base_(base) {}
PowerLossFs::~PowerLossFs() = default;

std::shared_ptr<PowerLossFs::ContentUndo> PowerLossFs::content_for(const std::string& path) {
    auto& slot = contents_[path];
    if (!slot) {
        slot = std::make_shared<ContentUndo>();
        slot->synced_size = file_size_or_zero(path);
    }
    return slot;
}

void PowerLossFs::move_content(const std::string& from, const std::string& to) {
    // The entry itself and, for a directory, everything below it.
    std::map<std::string, std::shared_ptr<ContentUndo>> moved;
    for (auto it = contents_.begin(); it != contents_.end();) {
        const std::string& key = it->first;
        if (key == from || key.rfind(from + "/", 0) == 0) {
            moved[to + key.substr(from.size())] = it->second;
            it = contents_.erase(it);
        } else {
            ++it;
        }
    }
    for (auto& [key, value] : moved) contents_[key] = value;
}

Result<std::string> PowerLossFs::keep_backup(const std::string& path) {
    const std::string backup =
        join_path(parent_directory(path), kBackupPrefix + std::to_string(++backup_counter_));
    if (::link(path.c_str(), backup.c_str()) != 0)
        return Status::from_errno("power-loss layer: cannot keep " + path, errno);
    move_content(path, backup);
    return backup;
}

Result<std::unique_ptr<File>> PowerLossFs::open(const std::string& path, OpenMode mode) {
    std::lock_guard<std::mutex> lock(mutex_);
    const bool existed = path_exists(path);
    std::shared_ptr<ContentUndo> undo;
    if (mode == OpenMode::kCreateTruncate && existed) {
        // Truncation replaces the synced contents: keep them to put back.
        undo = content_for(path);
        std::string old;
        auto whole = read_whole_file(base_, path);
        if (!whole) return whole.status();
        if (undo->writes.empty()) old = *whole;
        if (!old.empty()) undo->writes.push_back(ContentUndo::Write{0, std::move(old)});
    }
    auto file = base_.open(path, mode);
    if (!file) return file.status();
    if (!existed && mode != OpenMode::kReadOnly) {
        contents_.erase(path);
        entries_.push_back(EntryUndo{EntryUndo::Kind::kCreated, path, "", "", parent_directory(path), ""});
    }
    if (!undo) undo = content_for(path);
    return std::unique_ptr<File>(new PowerLossFile(mutex_, std::move(*file), std::move(undo)));
}

Status PowerLossFs::rename(const std::string& from, const std::string& to) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::string backup;
    if (path_exists(to) && !is_directory(to)) {
        auto kept = keep_backup(to);
        if (!kept) return kept.status();
        backup = *kept;
    }
    Status s = base_.rename(from, to);
    if (!s) return s;
    move_content(from, to);
    const std::string from_dir = parent_directory(from), to_dir = parent_directory(to);
    entries_.push_back(EntryUndo{EntryUndo::Kind::kRenamed, to, from, backup, to_dir,
                                 from_dir == to_dir ? "" : from_dir});
    return s;
}

Status PowerLossFs::unlink(const std::string& path) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!path_exists(path)) return base_.unlink(path);  // the base reports kNotFound
    auto backup = keep_backup(path);
    if (!backup) return backup.status();
    Status s = base_.unlink(path);
    if (!s) return s;
    entries_.push_back(EntryUndo{EntryUndo::Kind::kUnlinked, path, "", *backup, parent_directory(path), ""});
    return s;
}

Status PowerLossFs::make_directory(const std::string& path) {
    std::lock_guard<std::mutex> lock(mutex_);
    const bool existed = path_exists(path);
    Status s = base_.make_directory(path);
    if (s && !existed)
        entries_.push_back(EntryUndo{EntryUndo::Kind::kMadeDirectory, path, "", "", parent_directory(path), ""});
    return s;
}

Status PowerLossFs::sync_directory(const std::string& path) {
    std::lock_guard<std::mutex> lock(mutex_);
    Status s = base_.sync_directory(path);
    if (!s) return s;
    // The entries of this directory are durable now (a rename across
    // directories once both are synced).
    std::vector<EntryUndo> kept;
    for (EntryUndo& e : entries_) {
        if (e.directory == path) e.directory.clear();
        if (e.directory2 == path) e.directory2.clear();
        if (e.directory.empty() && e.directory2.empty()) {
            if (!e.backup.empty()) {
                contents_.erase(e.backup);
                ::unlink(e.backup.c_str());
            }
        } else {
            kept.push_back(std::move(e));
        }
    }
    entries_ = std::move(kept);
    return s;
}

Result<std::vector<std::string>> PowerLossFs::list_directory(const std::string& path) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto names = base_.list_directory(path);
    if (!names) return names;
    std::vector<std::string> visible;
    for (auto& name : *names)
        if (!is_backup_name(name)) visible.push_back(std::move(name));
    return visible;
}

bool PowerLossFs::exists(const std::string& path) { return base_.exists(path); }
bool PowerLossFs::is_directory(const std::string& path) { return base_.is_directory(path); }

Status PowerLossFs::remove_tree(const std::string& path) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = contents_.begin(); it != contents_.end();)
        it = (it->first == path || it->first.rfind(path + "/", 0) == 0) ? contents_.erase(it) : std::next(it);
    return base_.remove_tree(path);
}

void PowerLossFs::lose_power_and_exit() {
    mutex_.lock();  // never released: the process ends here
    std::fprintf(stderr, "power-loss layer: dropping every unsynced write and exiting\n");
    // File contents first, at their current paths, newest write first.
    for (const auto& [path, undo] : contents_) {
        const int fd = ::open(path.c_str(), O_WRONLY);
        if (fd < 0) continue;
        for (auto w = undo->writes.rbegin(); w != undo->writes.rend(); ++w)
            (void)!::pwrite(fd, w->old_bytes.data(), w->old_bytes.size(), static_cast<off_t>(w->offset));
        (void)!::ftruncate(fd, static_cast<off_t>(undo->synced_size));
        ::close(fd);
    }
    // Then the directory entries, newest first.
    for (auto e = entries_.rbegin(); e != entries_.rend(); ++e) {
        switch (e->kind) {
            case EntryUndo::Kind::kCreated: ::unlink(e->path.c_str()); break;
            case EntryUndo::Kind::kRenamed:
                (void)::rename(e->path.c_str(), e->from.c_str());
                if (!e->backup.empty()) (void)::rename(e->backup.c_str(), e->path.c_str());
                break;
            case EntryUndo::Kind::kUnlinked: (void)::rename(e->backup.c_str(), e->path.c_str()); break;
            case EntryUndo::Kind::kMadeDirectory: (void)::rmdir(e->path.c_str()); break;
        }
    }
    ::sync();
    std::fflush(stderr);
    ::_exit(kPowerLossExitCode);
}

}  // namespace wp::sk
