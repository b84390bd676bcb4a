#include "walproposer/configuration.h"

#include <algorithm>
#include <cctype>
#include <functional>

namespace wp {

bool Configuration::is_member(NodeId id) const {
    return set_contains(members, id) || (new_members && set_contains(*new_members, id));
}

MemberSet Configuration::all_members() const {
    MemberSet all = members;
    if (new_members)
        for (const Member& m : *new_members)
            if (!set_contains(all, m.id)) all.push_back(m);
    return all;
}

bool Configuration::operator==(const Configuration& o) const {
    return generation == o.generation && created_term == o.created_term && members == o.members &&
           new_members == o.new_members;
}

bool set_contains(const MemberSet& set, NodeId id) {
    return std::any_of(set.begin(), set.end(), [id](const Member& m) { return m.id == id; });
}

bool same_set(const MemberSet& a, const MemberSet& b) {
    if (a.size() != b.size()) return false;
    for (const Member& m : a)
        if (std::find(b.begin(), b.end(), m) == b.end()) return false;
    return true;
}

bool is_majority_of(const MemberSet& set, const std::vector<NodeId>& acked) {
    if (set.empty()) return false;
    std::size_t n = 0;
    for (const Member& m : set)
        if (std::find(acked.begin(), acked.end(), m.id) != acked.end()) ++n;
    return n >= set.size() / 2 + 1;
}

bool is_quorum(const Configuration& c, const std::vector<NodeId>& acked) {
    if (!is_majority_of(c.members, acked)) return false;
    return !c.new_members || is_majority_of(*c.new_members, acked);
}

namespace {

Lsn lsn_of(const std::vector<std::pair<NodeId, Lsn>>& lsns, NodeId id) {
    Lsn best = kInvalidLsn;
    for (const auto& [node, lsn] : lsns)
        if (node == id) best = std::max(best, lsn);
    return best;
}

Lsn set_quorum_lsn(const MemberSet& set, const std::vector<std::pair<NodeId, Lsn>>& lsns) {
    if (set.empty()) return kInvalidLsn;
    std::vector<Lsn> v;
    for (const Member& m : set) v.push_back(lsn_of(lsns, m.id));
    std::sort(v.begin(), v.end(), std::greater<Lsn>());
    return v[set.size() / 2];  // the majority-th highest
}

}  // namespace

Lsn quorum_lsn(const Configuration& c, const std::vector<std::pair<NodeId, Lsn>>& lsns) {
    Lsn lsn = set_quorum_lsn(c.members, lsns);
    if (c.new_members) lsn = std::min(lsn, set_quorum_lsn(*c.new_members, lsns));
    return lsn;
}

Lsn all_members_lsn(const Configuration& c, const std::vector<std::pair<NodeId, Lsn>>& lsns) {
    const MemberSet all = c.all_members();
    if (all.empty()) return kInvalidLsn;
    Lsn lowest = lsn_of(lsns, all.front().id);
    for (const Member& m : all) lowest = std::min(lowest, lsn_of(lsns, m.id));
    return lowest;
}

Status validate_member_set(const MemberSet& set) {
    if (set.empty()) return Status::invalid("a member set needs at least one safekeeper");
    if (set.size() > kMaxSafekeepers)
        return Status::invalid("more than " + std::to_string(kMaxSafekeepers) + " members");
    for (std::size_t i = 0; i < set.size(); ++i) {
        const Member& m = set[i];
        if (m.id == 0) return Status::invalid("member " + m.address.to_string() + " has node id 0");
        if (m.address.host.empty() || m.address.host.size() > kMaxHostLength || m.address.port == 0)
            return Status::invalid("member " + std::to_string(m.id) + " has a bad address");
        for (std::size_t j = 0; j < i; ++j) {
            if (set[j].id == m.id)
                return Status::invalid("node id " + std::to_string(m.id) + " is listed twice");
            if (set[j].address == m.address)
                return Status::invalid("address " + m.address.to_string() + " is listed twice");
        }
    }
    return Status();
}

Status validate_configuration(const Configuration& c) {
    if (c.generation == 0) {
        if (!c.members.empty() || c.new_members || c.created_term != 0)
            return Status::invalid("generation 0 (no configuration) must have no members");
        return Status();
    }
    Status s = validate_member_set(c.members);
    if (!s.ok()) return s.with_context("members");
    if (c.new_members) {
        s = validate_member_set(*c.new_members);
        if (!s.ok()) return s.with_context("new members");
        if (same_set(c.members, *c.new_members))
            return Status::invalid("a joint configuration needs two different sets");
        // A node id names one safekeeper: the same id with another address in
        // the other set is a mistake.
        for (const Member& m : *c.new_members)
            for (const Member& o : c.members)
                if (m.id == o.id && !(m.address == o.address))
                    return Status::invalid("node id " + std::to_string(m.id) +
                                           " has two different addresses");
    }
    return Status();
}

std::string format_member_set(const MemberSet& set) {
    std::string s = "{";
    for (std::size_t i = 0; i < set.size(); ++i) {
        if (i) s += ",";
        s += std::to_string(set[i].id) + "=" + set[i].address.to_string();
    }
    return s + "}";
}

std::string format_configuration(const Configuration& c) {
    if (c.generation == 0) return "none";
    std::string s = "generation " + std::to_string(c.generation) + " (term " +
                    std::to_string(c.created_term) + ") " + format_member_set(c.members);
    if (c.new_members) s += " -> " + format_member_set(*c.new_members);
    return s;
}

Result<MemberSet> parse_member_set(std::string_view text) {
    MemberSet set;
    std::size_t start = 0;
    while (start <= text.size()) {
        std::size_t comma = text.find(',', start);
        if (comma == std::string_view::npos) comma = text.size();
        std::string_view entry = text.substr(start, comma - start);
        while (!entry.empty() && std::isspace(static_cast<unsigned char>(entry.front())))
            entry.remove_prefix(1);
        while (!entry.empty() && std::isspace(static_cast<unsigned char>(entry.back())))
            entry.remove_suffix(1);
        const std::size_t eq = entry.find('=');
        if (eq == std::string_view::npos || eq == 0)
            return Status::invalid("\"" + std::string(entry) + "\": expected \"id=host:port\"");
        NodeId id = 0;
        for (char ch : entry.substr(0, eq)) {
            if (ch < '0' || ch > '9' || id > (~0ull - 9) / 10)
                return Status::invalid("\"" + std::string(entry) + "\": bad node id");
            id = id * 10 + static_cast<NodeId>(ch - '0');
        }
        Result<SafekeeperAddress> address = parse_safekeeper_address(entry.substr(eq + 1));
        if (!address) return address.status();
        set.push_back(Member{id, *address});
        start = comma + 1;
    }
    Status s = validate_member_set(set);
    if (!s.ok()) return s;
    return set;
}

Result<SafekeepersSetting> parse_safekeepers_setting(std::string_view text) {
    SafekeepersSetting setting;
    std::size_t with_id = 0, entries = 0;
    bool blank = true;
    for (char ch : text) {
        if (ch == '=') ++with_id;
        if (ch == ',') ++entries;
        if (!std::isspace(static_cast<unsigned char>(ch))) blank = false;
    }
    if (blank || with_id == 0) {
        Result<std::vector<SafekeeperAddress>> list = parse_safekeeper_list(text);
        if (!list) return list.status();
        setting.addresses = std::move(*list);
        return setting;
    }
    if (with_id != entries + 1)
        return Status::invalid("mixes the two forms: write every entry as id=host:port (a "
                               "membership configuration) or none (a plain host:port list)");
    Result<MemberSet> members = parse_member_set(text);
    if (!members) return members.status();
    setting.member_form = true;
    setting.members = std::move(*members);
    return setting;
}

namespace {

bool read_set(ByteReader& r, MemberSet& set, std::string& error) {
    std::uint32_t count = 0;
    if (!r.le32(count)) return false;
    if (count > kMaxSafekeepers) {
        error = "configuration set of " + std::to_string(count) + " members exceeds the limit " +
                std::to_string(kMaxSafekeepers);
        return false;
    }
    for (std::uint32_t i = 0; i < count; ++i) {
        Member m;
        std::uint16_t len = 0;
        if (!(r.le64(m.id) && r.le16(m.address.port) && r.le16(len))) return false;
        if (len > kMaxHostLength) {
            error = "configuration member host of " + std::to_string(len) + " bytes is too long";
            return false;
        }
        if (!r.string(m.address.host, len)) return false;
        set.push_back(std::move(m));
    }
    return true;
}

}  // namespace

Result<Configuration> read_configuration(ByteReader& r) {
    Configuration c;
    std::string error;
    std::uint8_t joint = 0;
    bool ok = r.le32(c.generation) && r.le64(c.created_term) && read_set(r, c.members, error) &&
              r.u8(joint);
    if (ok && joint > 1) error = "configuration joint flag must be 0 or 1";
    if (ok && joint == 1 && error.empty()) {
        c.new_members.emplace();
        ok = read_set(r, *c.new_members, error);
    }
    if (!error.empty()) return Status::corrupt(error);
    if (!ok) return Status::corrupt("truncated configuration");
    Status s = validate_configuration(c);
    if (!s.ok()) return Status::corrupt("malformed configuration: " + s.message());
    return c;
}

namespace {

// A libpq conninfo value: bare when it can be, else single-quoted.
std::string conninfo_value(const std::string& value) {
    const bool bare = !value.empty() && value.find_first_of(" \t\n\r'\\") == std::string::npos;
    if (bare) return value;
    std::string quoted = "'";
    for (char c : value) {
        if (c == '\'' || c == '\\') quoted.push_back('\\');
        quoted.push_back(c);
    }
    return quoted + "'";
}

}  // namespace

std::string standby_conninfo(const SafekeepersSetting& setting, const std::string& tenant_hex,
                             const std::string& timeline_hex,
                             const std::vector<std::pair<std::string, std::string>>& extra) {
    std::vector<SafekeeperAddress> addresses = setting.addresses;
    if (setting.member_form)
        for (const Member& m : setting.members) addresses.push_back(m.address);
    std::string hosts, ports;
    for (const SafekeeperAddress& a : addresses) {
        std::string host = a.host;
        if (host.size() > 2 && host.front() == '[' && host.back() == ']')
            host = host.substr(1, host.size() - 2);
        hosts += (hosts.empty() ? "" : ",") + host;
        ports += (ports.empty() ? "" : ",") + std::to_string(a.port);
    }
    std::string out = "host=" + conninfo_value(hosts) + " port=" + conninfo_value(ports);
    for (const auto& [keyword, value] : extra) out += " " + keyword + "=" + conninfo_value(value);
    out += " options=" +
           conninfo_value("-c tenant_id=" + tenant_hex + " -c timeline_id=" + timeline_hex);
    return out;
}

}  // namespace wp
