#include "timeline/wal_consumers.h"

#include <unistd.h>

namespace wp::sk {

std::uint64_t ConsumerSet::add(ConsumerInfo info, int notify_fd) {
    std::lock_guard<std::mutex> g(mutex_);
    const std::uint64_t id = next_id_++;
    info.id = id;
    entries_[id] = Entry{std::move(info), notify_fd};
    return id;
}

void ConsumerSet::remove(std::uint64_t id) {
    std::lock_guard<std::mutex> g(mutex_);
    entries_.erase(id);
}

void ConsumerSet::set_sent(std::uint64_t id, Lsn sent_lsn) {
    std::lock_guard<std::mutex> g(mutex_);
    if (auto it = entries_.find(id); it != entries_.end()) it->second.info.sent_lsn = sent_lsn;
}

void ConsumerSet::set_reply(std::uint64_t id, Lsn write, Lsn flush, Lsn apply,
                            std::int64_t now_unix_ms) {
    std::lock_guard<std::mutex> g(mutex_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    ConsumerInfo& c = it->second.info;
    c.write_lsn = write;
    c.flush_lsn = flush;
    c.apply_lsn = apply;
    c.last_reply_unix_ms = now_unix_ms;
    if (!c.slot_name.empty() && flush != kInvalidLsn) {
        if (slots_.count(c.slot_name) == 0 && slots_.size() >= kMaxRememberedSlots) {
            // Forget a name no connected consumer streams on.
            for (auto s = slots_.begin(); s != slots_.end(); ++s) {
                bool in_use = false;
                for (const auto& [other_id, e] : entries_)
                    if (e.info.slot_name == s->first) in_use = true;
                if (!in_use) {
                    slots_.erase(s);
                    break;
                }
            }
            if (slots_.size() >= kMaxRememberedSlots) return;
        }
        Lsn& s = slots_[c.slot_name];
        if (flush > s) s = flush;
    }
}

bool ConsumerSet::set_hot_standby_feedback(std::uint64_t id, std::uint64_t xmin,
                                           std::uint64_t catalog_xmin) {
    std::lock_guard<std::mutex> g(mutex_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return false;
    const auto before = min_locked();
    it->second.info.hs_xmin = xmin;
    it->second.info.hs_catalog_xmin = catalog_xmin;
    return min_locked() != before;
}

std::pair<std::uint64_t, std::uint64_t> ConsumerSet::min_locked() const {
    std::uint64_t xmin = 0, catalog_xmin = 0;
    for (const auto& [id, e] : entries_) {
        if (e.info.hs_xmin && (!xmin || e.info.hs_xmin < xmin)) xmin = e.info.hs_xmin;
        if (e.info.hs_catalog_xmin && (!catalog_xmin || e.info.hs_catalog_xmin < catalog_xmin))
            catalog_xmin = e.info.hs_catalog_xmin;
    }
    return {xmin, catalog_xmin};
}

std::pair<std::uint64_t, std::uint64_t> ConsumerSet::min_hot_standby_feedback() const {
    std::lock_guard<std::mutex> g(mutex_);
    return min_locked();
}

std::vector<ConsumerInfo> ConsumerSet::list() const {
    std::lock_guard<std::mutex> g(mutex_);
    std::vector<ConsumerInfo> out;
    out.reserve(entries_.size());
    for (const auto& [id, e] : entries_) out.push_back(e.info);
    return out;
}

std::size_t ConsumerSet::size() const {
    std::lock_guard<std::mutex> g(mutex_);
    return entries_.size();
}

std::optional<Lsn> ConsumerSet::slot_flush_lsn(const std::string& slot) const {
    std::lock_guard<std::mutex> g(mutex_);
    auto it = slots_.find(slot);
    if (it == slots_.end()) return std::nullopt;
    return it->second;
}

void ConsumerSet::notify_all() {
    std::lock_guard<std::mutex> g(mutex_);
    const std::uint64_t one = 1;
    for (const auto& [id, e] : entries_)
        if (e.notify_fd >= 0) (void)!::write(e.notify_fd, &one, sizeof one);
}

}  // namespace wp::sk
