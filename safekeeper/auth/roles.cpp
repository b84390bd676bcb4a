#include "auth/roles.h"

#include <sys/stat.h>
#include <time.h>

#include <fstream>
#include <sstream>
#include <vector>

namespace wp::sk {
namespace {

constexpr std::int64_t kPasswordCacheMs = 60 * 1000;
constexpr std::size_t kPasswordCacheMax = 1024;

std::int64_t monotonic_ms() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

std::vector<std::string> split_commas(const std::string& text) {
    std::vector<std::string> out;
    std::string item;
    std::istringstream in(text);
    while (std::getline(in, item, ',')) out.push_back(item);
    return out;
}

bool valid_role_name(const std::string& name) {
    if (name.empty() || name.size() > 63) return false;
    for (unsigned char c : name)
        if (!(std::isalnum(c) || c == '_' || c == '-' || c == '.' || c == '@')) return false;
    return true;
}

}  // namespace

std::string describe_permissions(unsigned permissions) {
    std::string out;
    for (auto [bit, name] : {std::pair{kPermPush, "push"}, {kPermRead, "read"}, {kPermAdmin, "admin"}})
        if (permissions & bit) out += (out.empty() ? "" : ",") + std::string(name);
    return out.empty() ? "none" : out;
}

bool Principal::may(unsigned permission) const {
    const unsigned effective = permissions | ((permissions & kPermAdmin) ? kPermRead : 0u);
    return (effective & permission) == permission;
}

bool Principal::may(unsigned permission, const Id128& tenant) const {
    return may(permission) && may_touch(tenant);
}

std::string Principal::describe() const {
    return role.empty() ? std::string("trusted client") : "role \"" + role + "\"";
}

Principal trusted_principal() {
    Principal p;
    p.permissions = kPermPush | kPermRead | kPermAdmin;
    p.all_tenants = true;
    return p;
}

Principal principal_of(const Role& role) {
    Principal p;
    p.role = role.name;
    p.permissions = role.permissions;
    p.all_tenants = role.all_tenants;
    p.tenants = role.tenants;
    return p;
}

Result<Roles> parse_roles_file(const std::string& text, const std::string& source) {
    Roles roles;
    std::istringstream in(text);
    std::string line;
    int number = 0;
    while (std::getline(in, line)) {
        ++number;
        const std::string where = source + ":" + std::to_string(number) + ": ";
        if (auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
        std::istringstream fields(line);
        std::vector<std::string> f;
        for (std::string word; fields >> word;) f.push_back(word);
        if (f.empty()) continue;
        if (f.size() != 4)
            return Status::invalid(where + "expected 4 fields (name permissions tenants secret), got " +
                                   std::to_string(f.size()));
        Role role;
        role.name = f[0];
        if (!valid_role_name(role.name))
            return Status::invalid(where + "invalid role name \"" + role.name +
                                   "\" (1-63 characters: letters, digits, _ - . @)");
        if (roles.count(role.name)) return Status::invalid(where + "role \"" + role.name + "\" is listed twice");
        for (const std::string& p : split_commas(f[1])) {
            if (p == "push") role.permissions |= kPermPush;
            else if (p == "read") role.permissions |= kPermRead;
            else if (p == "admin") role.permissions |= kPermAdmin;
            else
                return Status::invalid(where + "unknown permission \"" + p +
                                       "\" (expected push, read or admin, comma-separated)");
        }
        if (f[2] == "*") {
            role.all_tenants = true;
        } else {
            for (const std::string& t : split_commas(f[2])) {
                auto id = parse_id(t);
                if (!id) return Status::invalid(where + "tenant \"" + t + "\" " + id.status().message());
                role.tenants.insert(*id);
            }
        }
        auto secret = parse_scram_secret(f[3]);
        if (!secret) return Status::invalid(where + secret.status().message());
        role.secret = std::move(*secret);
        roles.emplace(role.name, std::move(role));
    }
    return roles;
}

Authenticator::Authenticator(AuthMode mode, std::string roles_path)
    : mode_(mode), roles_path_(std::move(roles_path)), roles_(std::make_shared<Roles>()) {
    auto key = strong_random_bytes(32);
    mock_key_ = key ? *key : std::string("safekeeper-mock-key");
}

Status Authenticator::load() {
    if (mode_ == AuthMode::kTrust) return Status();
    std::ifstream in(roles_path_, std::ios::binary);
    if (!in) return Status::from_errno("cannot read roles file " + roles_path_, errno);
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) return Status::from_errno("cannot read roles file " + roles_path_, errno);
    auto parsed = parse_roles_file(text.str(), roles_path_);
    if (!parsed) return parsed.status();
    auto snapshot = std::make_shared<const Roles>(std::move(*parsed));
    std::lock_guard<std::mutex> lock(mu_);
    roles_ = std::move(snapshot);
    verified_.clear();
    return Status();
}

std::size_t Authenticator::role_count() const {
    std::lock_guard<std::mutex> lock(mu_);
    return roles_->size();
}

std::shared_ptr<const Role> Authenticator::find(const std::string& name) const {
    std::shared_ptr<const Roles> roles;
    {
        std::lock_guard<std::mutex> lock(mu_);
        roles = roles_;
    }
    auto it = roles->find(name);
    if (it == roles->end()) return nullptr;
    // Aliasing constructor: the role lives as long as its snapshot.
    return std::shared_ptr<const Role>(roles, &it->second);
}

Result<Principal> Authenticator::check_password(const std::string& name,
                                                const std::string& password) {
    if (mode_ == AuthMode::kTrust) return trusted_principal();
    auto role = find(name);
    if (!role) return Status::error("role \"" + name + "\" does not exist");
    auto digest = sha256(name + '\0' + password);
    if (!digest) return digest.status();
    const std::string key(as_bytes(*digest));
    const std::int64_t now = monotonic_ms();
    {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = verified_.find(key);
        if (it != verified_.end() && now - it->second < kPasswordCacheMs) return principal_of(*role);
    }
    auto matches = scram_password_matches(role->secret, password);
    if (!matches) return matches.status();
    if (!*matches) return Status::error("password does not match for role \"" + name + "\"");
    std::lock_guard<std::mutex> lock(mu_);
    if (verified_.size() >= kPasswordCacheMax) verified_.clear();
    verified_[key] = now;
    return principal_of(*role);
}

}  // namespace wp::sk
