#include "retention/slot_store.h"

#include <algorithm>

#include "storage/crc32c.h"
#include "walproposer/byte_order.h"

namespace wp::sk {
namespace {

constexpr std::uint32_t kSlotFileMagic = 0x53524B53;  // bytes 53 4B 52 53, "SKRS"
constexpr std::uint32_t kSlotFileVersion = 1;

}  // namespace

Status validate_slot_name(const std::string& name) {
    if (name.empty()) return Status::invalid("replication slot name \"\" is too short");
    if (name.size() > kMaxSlotNameLength)
        return Status::invalid("replication slot name \"" + name + "\" is too long (at most " +
                               std::to_string(kMaxSlotNameLength) + " characters)");
    for (char c : name) {
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return Status::invalid("replication slot name \"" + name +
                                   "\" contains invalid character (replication slot names may "
                                   "only contain lower case letters, numbers, and the underscore "
                                   "character)");
    }
    return Status();
}

std::string encode_slot_file(const std::vector<SlotData>& slots) {
    std::string out;
    ByteWriter<std::string> w(out);
    w.le32(kSlotFileMagic);
    w.le32(kSlotFileVersion);
    w.le32(static_cast<std::uint32_t>(slots.size()));
    for (const SlotData& s : slots) {
        w.u8(static_cast<std::uint8_t>(s.name.size()));
        w.bytes(s.name.data(), s.name.size());
        w.le64(s.restart_lsn);
        w.u8(s.invalidated ? 1 : 0);
        w.le64(s.invalidated_at);
    }
    w.le32(wp_crc32c(out.data(), out.size()));
    return out;
}

Result<std::vector<SlotData>> decode_slot_file(const std::string& bytes) {
    if (bytes.size() < 16) return Status::corrupt("slot file is too short");
    const std::size_t body = bytes.size() - 4;
    ByteReader crc_r(bytes.data() + body, 4);
    std::uint32_t crc = 0;
    (void)crc_r.le32(crc);
    ByteReader r(bytes.data(), body);
    std::uint32_t magic = 0, version = 0, count = 0;
    (void)(r.le32(magic) && r.le32(version) && r.le32(count));
    if (magic != kSlotFileMagic) return Status::corrupt("slot file has a bad magic number");
    if (version != kSlotFileVersion)
        return Status::corrupt("slot file has unknown version " + std::to_string(version));
    if (crc != wp_crc32c(bytes.data(), body)) return Status::corrupt("slot file CRC mismatch");
    if (count > kMaxSlotsPerTimeline)
        return Status::corrupt("slot file holds " + std::to_string(count) + " slots (at most " +
                               std::to_string(kMaxSlotsPerTimeline) + ")");
    std::vector<SlotData> out;
    for (std::uint32_t i = 0; i < count; ++i) {
        SlotData s;
        std::uint8_t len = 0, flags = 0;
        if (!(r.u8(len) && r.string(s.name, len) && r.le64(s.restart_lsn) && r.u8(flags) &&
              r.le64(s.invalidated_at)))
            return Status::corrupt("slot file entry " + std::to_string(i) + " runs past the end");
        if (!validate_slot_name(s.name).ok() || flags > 1)
            return Status::corrupt("slot file entry " + std::to_string(i) + " is malformed");
        s.invalidated = flags == 1;
        out.push_back(std::move(s));
    }
    if (r.remaining() != 0) return Status::corrupt("slot file has trailing bytes");
    return out;
}

Result<std::unique_ptr<SlotStore>> SlotStore::load(FileSystem& fs, const std::string& dir) {
    std::unique_ptr<SlotStore> store(new SlotStore(fs, dir));
    const std::string path = join_path(dir, kSlotFileName);
    if (!fs.exists(path)) return store;
    auto bytes = read_whole_file(fs, path);
    if (!bytes) return bytes.status();
    auto slots = decode_slot_file(*bytes);
    if (!slots) return slots.status().with_context(path);
    store->slots_ = std::move(*slots);
    return store;
}

SlotData* SlotStore::find_locked(const std::string& name) {
    auto it = std::find_if(slots_.begin(), slots_.end(),
                           [&](const SlotData& s) { return s.name == name; });
    return it == slots_.end() ? nullptr : &*it;
}

Status SlotStore::write_locked() {
    Status s = write_file_atomically(fs_, join_path(dir_, kSlotFileName), encode_slot_file(slots_));
    if (s.ok()) {
        dirty_ = false;
        last_write_ = std::chrono::steady_clock::now();
    }
    return s;
}

Status SlotStore::create(const std::string& name, Lsn restart_lsn, SlotError& why) {
    why = SlotError::kNone;
    Status valid = validate_slot_name(name);
    if (!valid.ok()) {
        why = SlotError::kBadName;
        return valid;
    }
    std::lock_guard<std::mutex> g(mutex_);
    if (find_locked(name)) {
        why = SlotError::kExists;
        return Status::invalid("replication slot \"" + name + "\" already exists");
    }
    if (slots_.size() >= kMaxSlotsPerTimeline) {
        why = SlotError::kTooMany;
        return Status::invalid("all replication slots are in use (at most " +
                               std::to_string(kMaxSlotsPerTimeline) +
                               " per timeline); drop one with DROP_REPLICATION_SLOT");
    }
    slots_.push_back(SlotData{name, restart_lsn, false, kInvalidLsn});
    Status s = write_locked();
    if (!s.ok()) {
        slots_.pop_back();
        why = SlotError::kIo;
    }
    return s;
}

Status SlotStore::drop(const std::string& name, SlotError& why) {
    why = SlotError::kNone;
    std::lock_guard<std::mutex> g(mutex_);
    auto it = std::find_if(slots_.begin(), slots_.end(),
                           [&](const SlotData& s) { return s.name == name; });
    if (it == slots_.end()) {
        why = SlotError::kNotFound;
        return Status::error(StatusKind::kNotFound,
                             "replication slot \"" + name + "\" does not exist");
    }
    const SlotData kept = *it;
    slots_.erase(it);
    Status s = write_locked();
    if (!s.ok()) {
        slots_.push_back(kept);
        why = SlotError::kIo;
    }
    return s;
}

std::optional<SlotData> SlotStore::find(const std::string& name) const {
    std::lock_guard<std::mutex> g(mutex_);
    for (const SlotData& s : slots_)
        if (s.name == name) return s;
    return std::nullopt;
}

std::vector<SlotData> SlotStore::list() const {
    std::lock_guard<std::mutex> g(mutex_);
    return slots_;
}

void SlotStore::advance(const std::string& name, Lsn restart_lsn) {
    std::lock_guard<std::mutex> g(mutex_);
    SlotData* s = find_locked(name);
    if (!s || s->invalidated || restart_lsn <= s->restart_lsn) return;
    s->restart_lsn = restart_lsn;
    dirty_ = true;
}

void SlotStore::invalidate(const std::string& name, Lsn horizon) {
    std::lock_guard<std::mutex> g(mutex_);
    SlotData* s = find_locked(name);
    if (!s || s->invalidated) return;
    s->invalidated = true;
    s->invalidated_at = horizon;
    dirty_ = true;
}

Status SlotStore::persist_if_due(bool force) {
    std::lock_guard<std::mutex> g(mutex_);
    if (!dirty_) return Status();
    if (!force && std::chrono::steady_clock::now() - last_write_ < std::chrono::seconds(1))
        return Status();
    return write_locked();
}

}  // namespace wp::sk
