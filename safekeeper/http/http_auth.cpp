#include "http/http_auth.h"

#include "auth/scram_crypto.h"

namespace wp::sk {

HttpAccessRule http_access_rule(std::string_view method, std::string_view path) {
    HttpAccessRule rule;
    const bool read_only = method == "GET" || method == "HEAD";
    if (read_only && (path == "/v1/status" || path == "/metrics")) {
        rule.monitoring = true;
        return rule;
    }
    constexpr std::string_view kTenantPrefix = "/v1/tenant/";
    if (path.substr(0, kTenantPrefix.size()) == kTenantPrefix) {
        std::string_view rest = path.substr(kTenantPrefix.size());
        const std::string_view hex = rest.substr(0, rest.find('/'));
        if (auto tenant = parse_id(hex)) rule.tenant = *tenant;
        rule.permission = read_only ? unsigned{kPermRead} : unsigned{kPermAdmin};
        // A tenant path whose id does not parse touches no tenant; the
        // route answers 400/404 to a role that holds the permission.
        return rule;
    }
    rule.permission = read_only ? 0u : unsigned{kPermAdmin};
    return rule;
}

Result<std::pair<std::string, std::string>> parse_basic_authorization(std::string_view header) {
    constexpr std::string_view kScheme = "Basic ";
    if (header.size() <= kScheme.size() || header.substr(0, kScheme.size()) != kScheme)
        return Status::invalid("expected HTTP Basic credentials");
    std::string_view encoded = header.substr(kScheme.size());
    while (!encoded.empty() && encoded.front() == ' ') encoded.remove_prefix(1);
    auto decoded = base64_decode(encoded);
    if (!decoded) return Status::invalid("credentials are not valid base64");
    const std::size_t colon = decoded->find(':');
    if (colon == std::string::npos || colon == 0)
        return Status::invalid("credentials must be user:password");
    return std::make_pair(decoded->substr(0, colon), decoded->substr(colon + 1));
}

std::string basic_authorization(const std::string& user, const std::string& password) {
    return "Basic " + base64_encode(user + ":" + password);
}

}  // namespace wp::sk
