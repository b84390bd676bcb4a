// Who may do what on a safekeeper: the roles file, and the authenticator
// both ports consult.
//
// Roles file (text, UTF-8; docs/security.md, "Roles file"): one role per
// line, four fields separated by blanks; blank lines and `#` comments are
// ignored:
//   <name>  <permissions>  <tenants>  <secret>
//   walproposer  push   *                                 SCRAM-SHA-256$4096:...
//   replica      read   0123456789abcdef0123456789abcdef  SCRAM-SHA-256$4096:...
//   ops          admin  *                                 SCRAM-SHA-256$4096:...
// permissions: comma-separated, of
//   push  - START_WAL_PUSH (the proposer; can campaign for terms, so it can
//           fence a primary: the most dangerous permission)
//   read  - stream WAL (START_REPLICATION, TIMELINE_HISTORY, slots,
//           hot-standby feedback), timeline status and snapshot reads
//   admin - everything `read` may do, plus changes through the HTTP API
//           (DELETE, pull_timeline); does not include push
// tenants: `*` (all) or a comma-separated list of 32-hex-digit tenant ids.
// secret: a SCRAM-SHA-256 secret (`safekeeper hash-password` prints one;
// PostgreSQL's pg_authid.rolpassword has the same format).
//
// Contract: parse_roles_file checks the whole text and names the first bad
// line; nothing partial is returned. Authenticator is thread-safe: reload()
// swaps in a new roles snapshot atomically, and a lookup keeps the snapshot
// it got alive for as long as it holds it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "auth/scram.h"
#include "walproposer/result.h"
#include "walproposer/timeline_key.h"

namespace wp::sk {

enum Permission : unsigned {
    kPermPush = 1u << 0,
    kPermRead = 1u << 1,
    kPermAdmin = 1u << 2,
};

// "push,read" style text.
std::string describe_permissions(unsigned permissions);

struct Role {
    std::string name;
    unsigned permissions = 0;  // Permission bits
    bool all_tenants = false;
    std::set<Id128> tenants;
    ScramSecret secret;
};

// What an authenticated connection or request may do.
struct Principal {
    std::string role;          // "" under --auth trust
    unsigned permissions = 0;  // Permission bits (admin implies read)
    bool all_tenants = false;
    std::set<Id128> tenants;

    bool may(unsigned permission) const;
    bool may_touch(const Id128& tenant) const { return all_tenants || tenants.count(tenant) > 0; }
    // may(permission) && may_touch(tenant)
    bool may(unsigned permission, const Id128& tenant) const;
    std::string describe() const;  // "role \"x\"" or "trusted client"
};

// The principal of a trusted client (--auth trust): every permission.
Principal trusted_principal();
Principal principal_of(const Role& role);

using Roles = std::map<std::string, Role>;

// Parses a roles file's text; `source` names it in errors ("FILE:LINE: ...").
Result<Roles> parse_roles_file(const std::string& text, const std::string& source);

enum class AuthMode { kTrust, kScram };

class Authenticator {
public:
    // Trust: every client is trusted_principal(); `roles_path` unused.
    // Scram: roles from `roles_path` (load() must succeed before serving).
    Authenticator(AuthMode mode, std::string roles_path);

    AuthMode mode() const { return mode_; }
    const std::string& roles_path() const { return roles_path_; }
    // Reads the roles file; on error the roles in use stay as they were.
    Status load();
    // Number of roles in use.
    std::size_t role_count() const;
    // The role of this name in the current snapshot, if any.
    std::shared_ptr<const Role> find(const std::string& name) const;
    // Checks a cleartext password (HTTP Basic). Results are cached briefly
    // by a digest of (name, password), so a monitoring scraper does not pay
    // a PBKDF2 each request; a reload clears the cache.
    Result<Principal> check_password(const std::string& name, const std::string& password);
    // A per-process random key for the salts of unknown roles.
    const std::string& mock_key() const { return mock_key_; }

private:
    AuthMode mode_;
    std::string roles_path_;
    std::string mock_key_;
    mutable std::mutex mu_;
    std::shared_ptr<const Roles> roles_;
    std::map<std::string, std::int64_t> verified_;  // digest -> monotonic ms of the check
};

}  // namespace wp::sk
