// Safekeeper membership: configurations with generations, and the quorum
// rules of a joint configuration (docs/consensus.md, "Membership change").
//
// A Configuration names the safekeepers whose votes and flushes count: the
// set `members` and, while a change is in progress, the set `new_members`
// (a *joint* configuration). In a joint configuration an election and a
// commit need a majority of `members` AND a majority of `new_members`.
// Each configuration is identified by its key (generation, created_term): the
// generation counts the changes, the term is that of the elected proposer
// that created it (two proposers of different terms may each create one of
// the same generation; the later term's wins). Generation 0 means "no
// configuration" (a legacy proposer or a safekeeper that was never told one):
// quorums are then counted over the proposer's list of safekeepers.
//
// Every member is named by its node id (the safekeeper's --id) and the
// host:port of its PostgreSQL-protocol port, so a proposer that learns a
// configuration from a safekeeper can connect to the other members.
//
// Contract: values and pure functions; thread-safe. No IO.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "walproposer/byte_order.h"
#include "walproposer/config.h"
#include "walproposer/lsn.h"
#include "walproposer/result.h"
#include "walproposer/term_history.h"

namespace wp {

using NodeId = std::uint64_t;
using Generation = std::uint32_t;

struct Member {
    NodeId id = 0;  // never 0 in a configuration
    SafekeeperAddress address;
    bool operator==(const Member& o) const { return id == o.id && address == o.address; }
    bool operator!=(const Member& o) const { return !(*this == o); }
};
using MemberSet = std::vector<Member>;

// Orders configurations: a higher generation wins; of one generation, the
// one created in the later term.
struct ConfigurationKey {
    Generation generation = 0;
    Term created_term = 0;
    bool operator<(const ConfigurationKey& o) const {
        return std::tie(generation, created_term) < std::tie(o.generation, o.created_term);
    }
    bool operator==(const ConfigurationKey& o) const {
        return generation == o.generation && created_term == o.created_term;
    }
    bool operator!=(const ConfigurationKey& o) const { return !(*this == o); }
    bool operator>(const ConfigurationKey& o) const { return o < *this; }
};

struct Configuration {
    Generation generation = 0;  // 0 = none (legacy)
    Term created_term = 0;      // term of the proposer that created it
    MemberSet members;
    std::optional<MemberSet> new_members;  // present: joint configuration

    bool is_joint() const { return new_members.has_value(); }
    ConfigurationKey key() const { return ConfigurationKey{generation, created_term}; }
    // Member of `members` or of `new_members`.
    bool is_member(NodeId id) const;
    // Every member of every set, each once (members first).
    MemberSet all_members() const;
    bool operator==(const Configuration& o) const;
    bool operator!=(const Configuration& o) const { return !(*this == o); }
};

bool set_contains(const MemberSet& set, NodeId id);
// Same ids and addresses, in any order.
bool same_set(const MemberSet& a, const MemberSet& b);
// More than half of `set` is in `acked` (ids outside `set` do not count;
// duplicates count once). False for an empty set.
bool is_majority_of(const MemberSet& set, const std::vector<NodeId>& acked);
// A majority of `members` and, when joint, of `new_members`. Generation 0
// (no configuration) has no members: false.
bool is_quorum(const Configuration& c, const std::vector<NodeId>& acked);
// The highest LSN a quorum of `c` has reached, given each node's LSN (nodes
// not listed count as 0, ids outside the configuration are ignored): per set
// the majority-th highest, and the lowest of the sets.
Lsn quorum_lsn(const Configuration& c, const std::vector<std::pair<NodeId, Lsn>>& lsns);
// Lowest LSN over every member of every set (0 when one is not listed):
// what each member holds (truncate_lsn).
Lsn all_members_lsn(const Configuration& c, const std::vector<std::pair<NodeId, Lsn>>& lsns);

// Checks a member set: 1..kMaxSafekeepers members, ids non-zero and
// distinct, addresses distinct, hosts non-empty and at most kMaxHostLength.
Status validate_member_set(const MemberSet& set);
// Generation 0: no members, no new_members, created_term 0. Otherwise valid
// member sets and, when joint, two different sets.
Status validate_configuration(const Configuration& c);

// "{1=h1:5454,2=h2:5454}".
std::string format_member_set(const MemberSet& set);
// "generation 3 (term 7) {1=..,2=..} -> {2=..,4=..}" or "none".
std::string format_configuration(const Configuration& c);

// Parses "id=host:port,id=host:port,..." (the syntax format_member_set
// writes, without the braces); errors name the bad entry.
Result<MemberSet> parse_member_set(std::string_view text);

// The walproposer.safekeepers setting, in either of its two forms: the
// legacy list "host:port,host:port" (no configuration: generation 0) or the
// member form "id=host:port,id=host:port" (a membership configuration,
// docs/extension.md). A blank text is an empty legacy list. Mixing the forms
// is an error that says so.
struct SafekeepersSetting {
    bool member_form = false;
    std::vector<SafekeeperAddress> addresses;  // legacy form
    MemberSet members;                         // member form
};
Result<SafekeepersSetting> parse_safekeepers_setting(std::string_view text);

// A libpq connection string with which a standby (primary_conninfo) or
// pg_receivewal streams from every safekeeper of `setting` (the members of
// the member form) on one timeline:
//   host=sk1,sk2 port=5454,5454 <extra k=v ...> options='-c tenant_id=T -c timeline_id=L'
// `extra` keywords (user, sslmode, ...) come in the order given. Values are
// quoted as libpq needs (single quotes, backslash escapes); IPv6 hosts lose
// their brackets (libpq's host list takes them bare).
std::string standby_conninfo(const SafekeepersSetting& setting, const std::string& tenant_hex,
                             const std::string& timeline_hex,
                             const std::vector<std::pair<std::string, std::string>>& extra);

// Byte layout (little-endian; docs/protocol.md "Configuration"):
//   u32 generation, u64 created_term, set members, u8 joint (0/1),
//   [set new_members]; a set is u32 count then per member
//   u64 id, u16 port, u16 host length, host bytes.
template <typename Bytes>
void put_configuration(ByteWriter<Bytes>& w, const Configuration& c) {
    auto put_set = [&w](const MemberSet& set) {
        w.le32(static_cast<std::uint32_t>(set.size()));
        for (const Member& m : set) {
            w.le64(m.id);
            w.le16(m.address.port);
            w.le16(static_cast<std::uint16_t>(m.address.host.size()));
            w.bytes(m.address.host.data(), m.address.host.size());
        }
    };
    w.le32(c.generation);
    w.le64(c.created_term);
    put_set(c.members);
    w.u8(c.is_joint() ? 1 : 0);
    if (c.is_joint()) put_set(*c.new_members);
}
// Reads one configuration from `r` and validates it; an error names the
// problem (truncated, too many members, malformed).
Result<Configuration> read_configuration(ByteReader& r);

}  // namespace wp
