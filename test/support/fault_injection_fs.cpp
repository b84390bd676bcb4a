#include "support/fault_injection_fs.h"

#include <algorithm>
#include <cstring>

namespace wp::sk {

struct FaultInjectionFs::Inode {
    struct PendingWrite {
        std::uint64_t offset;
        std::vector<std::uint8_t> bytes;
    };
    std::vector<std::uint8_t> data;
    std::vector<std::uint8_t> durable;
    std::vector<PendingWrite> pending;
};

struct FaultInjectionFs::State {
    std::mutex mutex;
    std::map<std::string, std::shared_ptr<Inode>> names, durable_names;
    std::set<std::string> dirs{"/"}, durable_dirs{"/"};
    std::uint64_t ops = 0;
    std::uint64_t crash_at = 0;  // op number that crashes; 0 = never
    bool crashed = false;
    std::uint64_t epoch = 0;
    // Directory renames not yet durable (from, to): their subtrees move in
    // the durable view when the new parent directory is synced.
    std::vector<std::pair<std::string, std::string>> pending_dir_renames;
    std::uint64_t error_at = 0;  // op number that fails with error_errno; 0 = never
    int error_errno = 0;

    // Returns an error if this mutating op crashes (or already crashed), or
    // is the one chosen by inject_error_after().
    Status mutate() {
        if (crashed) return Status::error(StatusKind::kCrashed, "simulated crash");
        ++ops;
        if (crash_at != 0 && ops >= crash_at) {
            crashed = true;
            return Status::error(StatusKind::kCrashed, "simulated crash");
        }
        if (error_at != 0 && ops == error_at) {
            error_at = 0;
            return Status::from_errno("injected error", error_errno);
        }
        return Status();
    }
};

namespace {

std::string normalize(const std::string& p) {
    std::string out = p;
    while (out.size() > 1 && out.back() == '/') out.pop_back();
    return out;
}

class SimFile final : public File {
public:
    SimFile(std::shared_ptr<FaultInjectionFs::State> st, std::shared_ptr<FaultInjectionFs::Inode> inode,
            std::uint64_t epoch, bool writable)
        : st_(std::move(st)), inode_(std::move(inode)), epoch_(epoch), writable_(writable) {}

    Status pwrite_all(const void* data, std::size_t len, std::uint64_t offset) override {
        std::lock_guard<std::mutex> g(st_->mutex);
        WP_RETURN_IF_ERROR(check());
        if (!writable_) return Status::from_errno("pwrite", EBADF);
        Status m = st_->mutate();
        if (!m && m.kind() != StatusKind::kCrashed) {
            store_locked(data, len / 2, offset);  // a short write, then the error
            return m;
        }
        WP_RETURN_IF_ERROR(m);
        store_locked(data, len, offset);
        return Status();
    }
    Result<std::size_t> pread_upto(void* buf, std::size_t len, std::uint64_t offset) override {
        std::lock_guard<std::mutex> g(st_->mutex);
        WP_RETURN_IF_ERROR(check());
        const auto& d = inode_->data;
        if (offset >= d.size()) return std::size_t{0};
        std::size_t n = std::min<std::size_t>(len, d.size() - offset);
        std::memcpy(buf, d.data() + offset, n);
        return n;
    }
    Status sync_data() override {
        std::lock_guard<std::mutex> g(st_->mutex);
        WP_RETURN_IF_ERROR(check());
        WP_RETURN_IF_ERROR(st_->mutate());
        inode_->durable = inode_->data;
        inode_->pending.clear();
        return Status();
    }
    Result<std::uint64_t> size() override {
        std::lock_guard<std::mutex> g(st_->mutex);
        WP_RETURN_IF_ERROR(check());
        return static_cast<std::uint64_t>(inode_->data.size());
    }
    Status allocate(std::uint64_t offset, std::uint64_t len) override {
        return grow(offset + len);
    }
    Status extend_sparse(std::uint64_t size) override { return grow(size); }

private:
    // Both reserve nothing here; they count as one mutating operation (so a
    // test can make either fail) and extend the file with zeros.
    Status grow(std::uint64_t size) {
        std::lock_guard<std::mutex> g(st_->mutex);
        WP_RETURN_IF_ERROR(check());
        WP_RETURN_IF_ERROR(st_->mutate());
        if (inode_->data.size() < size) {
            const std::uint64_t old = inode_->data.size();
            inode_->data.resize(size, 0);
            inode_->pending.push_back({old, std::vector<std::uint8_t>(size - old, 0)});
        }
        return Status();
    }

    void store_locked(const void* data, std::size_t len, std::uint64_t offset) {
        if (len == 0) return;
        auto& d = inode_->data;
        if (d.size() < offset + len) d.resize(offset + len, 0);
        std::memcpy(d.data() + offset, data, len);
        const auto* p = static_cast<const std::uint8_t*>(data);
        inode_->pending.push_back({offset, std::vector<std::uint8_t>(p, p + len)});
    }
    Status check() const {
        if (st_->crashed || st_->epoch != epoch_)
            return Status::error(StatusKind::kCrashed, "simulated crash (stale file handle)");
        return Status();
    }
    std::shared_ptr<FaultInjectionFs::State> st_;
    std::shared_ptr<FaultInjectionFs::Inode> inode_;
    std::uint64_t epoch_;
    bool writable_;
};

}  // namespace

FaultInjectionFs::FaultInjectionFs() : state_(std::make_shared<State>()) {}
FaultInjectionFs::~FaultInjectionFs() = default;

void FaultInjectionFs::set_crash_after(std::uint64_t n) {
    std::lock_guard<std::mutex> g(state_->mutex);
    state_->crash_at = n == 0 ? 0 : state_->ops + n;
}

bool FaultInjectionFs::crashed() const {
    std::lock_guard<std::mutex> g(state_->mutex);
    return state_->crashed;
}

std::uint64_t FaultInjectionFs::mutating_ops() const {
    std::lock_guard<std::mutex> g(state_->mutex);
    return state_->ops;
}

void FaultInjectionFs::crash_and_restart(std::mt19937_64& rng, bool torn) {
    std::lock_guard<std::mutex> g(state_->mutex);
    State& st = *state_;
    std::set<Inode*> seen;
    auto settle = [&](const std::shared_ptr<Inode>& inode) {
        if (!seen.insert(inode.get()).second) return;
        std::vector<std::uint8_t> survived = inode->durable;
        if (torn) {
            for (const auto& w : inode->pending) {
                for (std::uint64_t off = 0; off < w.bytes.size(); off += 4096) {
                    if (rng() % 2 == 0) continue;
                    const std::uint64_t n = std::min<std::uint64_t>(4096, w.bytes.size() - off);
                    if (survived.size() < w.offset + off + n) survived.resize(w.offset + off + n, 0);
                    std::memcpy(survived.data() + w.offset + off, w.bytes.data() + off, n);
                }
            }
        }
        inode->data = survived;
        inode->durable = survived;
        inode->pending.clear();
    };
    for (auto& [name, inode] : st.names) settle(inode);
    for (auto& [name, inode] : st.durable_names) settle(inode);
    st.names = st.durable_names;
    st.dirs = st.durable_dirs;
    st.pending_dir_renames.clear();
    st.crashed = false;
    st.crash_at = 0;
    st.error_at = 0;
    ++st.epoch;
}

void FaultInjectionFs::process_crash() {
    std::lock_guard<std::mutex> g(state_->mutex);
    state_->crashed = false;
    state_->crash_at = 0;
    state_->error_at = 0;
    ++state_->epoch;  // open files die with the process; the page cache stays
}

void FaultInjectionFs::inject_error_after(std::uint64_t n, int err) {
    std::lock_guard<std::mutex> g(state_->mutex);
    state_->error_at = n == 0 ? 0 : state_->ops + n;
    state_->error_errno = err;
}

Result<std::unique_ptr<File>> FaultInjectionFs::open(const std::string& raw, OpenMode mode) {
    const std::string path = normalize(raw);
    std::lock_guard<std::mutex> g(state_->mutex);
    State& st = *state_;
    if (st.crashed) return Status::error(StatusKind::kCrashed, "simulated crash");
    auto it = st.names.find(path);
    const bool create = mode == OpenMode::kCreateExclusive || mode == OpenMode::kCreateTruncate;
    if (it == st.names.end()) {
        if (!create) return Status::from_errno("open " + path, ENOENT);
        if (!st.dirs.count(parent_directory(path))) return Status::from_errno("open " + path, ENOENT);
        WP_RETURN_IF_ERROR(st.mutate());
        it = st.names.emplace(path, std::make_shared<Inode>()).first;
    } else if (mode == OpenMode::kCreateExclusive) {
        return Status::from_errno("open " + path, EEXIST);
    } else if (mode == OpenMode::kCreateTruncate) {
        WP_RETURN_IF_ERROR(st.mutate());
        it->second->data.clear();
        it->second->pending.push_back({0, {}});  // size change is not durable until sync
    }
    return std::unique_ptr<File>(new SimFile(state_, it->second, st.epoch, mode != OpenMode::kReadOnly));
}

Status FaultInjectionFs::rename(const std::string& from_raw, const std::string& to_raw) {
    const std::string from = normalize(from_raw), to = normalize(to_raw);
    std::lock_guard<std::mutex> g(state_->mutex);
    State& st = *state_;
    WP_RETURN_IF_ERROR(st.mutate());
    auto it = st.names.find(from);
    if (it != st.names.end()) {
        auto inode = it->second;
        st.names.erase(it);
        st.names[to] = inode;
        return Status();
    }
    if (st.dirs.count(from)) {  // directory rename: move every entry below it
        std::map<std::string, std::shared_ptr<Inode>> moved;
        for (auto n = st.names.begin(); n != st.names.end();) {
            if (n->first.rfind(from + "/", 0) == 0) {
                moved[to + n->first.substr(from.size())] = n->second;
                n = st.names.erase(n);
            } else {
                ++n;
            }
        }
        st.names.insert(moved.begin(), moved.end());
        std::set<std::string> dirs;
        for (const auto& d : st.dirs)
            dirs.insert(d == from || d.rfind(from + "/", 0) == 0 ? to + d.substr(from.size()) : d);
        st.dirs = dirs;
        st.pending_dir_renames.emplace_back(from, to);
        return Status();
    }
    return Status::from_errno("rename " + from, ENOENT);
}

Status FaultInjectionFs::unlink(const std::string& raw) {
    const std::string path = normalize(raw);
    std::lock_guard<std::mutex> g(state_->mutex);
    WP_RETURN_IF_ERROR(state_->mutate());
    if (state_->names.erase(path) == 0) return Status::from_errno("unlink " + path, ENOENT);
    return Status();
}

Status FaultInjectionFs::make_directory(const std::string& raw) {
    const std::string path = normalize(raw);
    std::lock_guard<std::mutex> g(state_->mutex);
    State& st = *state_;
    if (st.dirs.count(path)) return Status();
    if (!st.dirs.count(parent_directory(path))) return Status::from_errno("mkdir " + path, ENOENT);
    WP_RETURN_IF_ERROR(st.mutate());
    st.dirs.insert(path);
    return Status();
}

Status FaultInjectionFs::sync_directory(const std::string& raw) {
    const std::string dir = normalize(raw);
    std::lock_guard<std::mutex> g(state_->mutex);
    State& st = *state_;
    WP_RETURN_IF_ERROR(st.mutate());
    // A renamed directory takes its whole durable subtree to the new name.
    for (auto r = st.pending_dir_renames.begin(); r != st.pending_dir_renames.end();) {
        if (parent_directory(r->second) != dir) {
            ++r;
            continue;
        }
        const std::string& from = r->first;
        const std::string& to = r->second;
        auto moved = [&](const std::string& p) {
            return p.rfind(from + "/", 0) == 0 ? to + p.substr(from.size()) : p;
        };
        std::map<std::string, std::shared_ptr<Inode>> names;
        for (auto& [name, inode] : st.durable_names) names[moved(name)] = inode;
        st.durable_names = std::move(names);
        std::set<std::string> dirs;
        for (const auto& d : st.durable_dirs) dirs.insert(moved(d));
        st.durable_dirs = std::move(dirs);
        r = st.pending_dir_renames.erase(r);
    }
    for (auto it = st.durable_names.begin(); it != st.durable_names.end();)
        it = parent_directory(it->first) == dir ? st.durable_names.erase(it) : std::next(it);
    for (const auto& [name, inode] : st.names)
        if (parent_directory(name) == dir) st.durable_names[name] = inode;
    for (auto it = st.durable_dirs.begin(); it != st.durable_dirs.end();)
        it = (parent_directory(*it) == dir && *it != "/") ? st.durable_dirs.erase(it) : std::next(it);
    for (const auto& d : st.dirs)
        if (parent_directory(d) == dir && d != "/") st.durable_dirs.insert(d);
    return Status();
}

Result<std::vector<std::string>> FaultInjectionFs::list_directory(const std::string& raw) {
    const std::string dir = normalize(raw);
    std::lock_guard<std::mutex> g(state_->mutex);
    State& st = *state_;
    if (st.crashed) return Status::error(StatusKind::kCrashed, "simulated crash");
    if (!st.dirs.count(dir)) return Status::from_errno("opendir " + dir, ENOENT);
    std::vector<std::string> out;
    for (const auto& [name, inode] : st.names)
        if (parent_directory(name) == dir) out.push_back(name.substr(name.find_last_of('/') + 1));
    for (const auto& d : st.dirs)
        if (d != "/" && parent_directory(d) == dir) out.push_back(d.substr(d.find_last_of('/') + 1));
    return out;
}

bool FaultInjectionFs::exists(const std::string& raw) {
    const std::string path = normalize(raw);
    std::lock_guard<std::mutex> g(state_->mutex);
    return state_->names.count(path) || state_->dirs.count(path);
}

bool FaultInjectionFs::is_directory(const std::string& raw) {
    std::lock_guard<std::mutex> g(state_->mutex);
    return state_->dirs.count(normalize(raw)) > 0;
}

Status FaultInjectionFs::remove_tree(const std::string& raw) {
    const std::string path = normalize(raw);
    std::lock_guard<std::mutex> g(state_->mutex);
    State& st = *state_;
    WP_RETURN_IF_ERROR(st.mutate());
    for (auto it = st.names.begin(); it != st.names.end();)
        it = it->first.rfind(path + "/", 0) == 0 ? st.names.erase(it) : std::next(it);
    for (auto it = st.dirs.begin(); it != st.dirs.end();)
        it = (*it == path || it->rfind(path + "/", 0) == 0) ? st.dirs.erase(it) : std::next(it);
    return Status();
}

}  // namespace wp::sk
