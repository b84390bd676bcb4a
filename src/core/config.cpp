#include "walproposer/config.h"

#include <cctype>
#include <cstdio>

namespace wp {

std::string SafekeeperAddress::to_string() const {
    const bool ipv6 = host.find(':') != std::string::npos;
    return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

bool valid_host_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
}

}  // namespace

Result<SafekeeperAddress> parse_safekeeper_address(std::string_view entry) {
    const std::string shown(entry);
    if (entry.empty()) return Result<SafekeeperAddress>::error("empty entry in the list");
    SafekeeperAddress address;
    std::string_view port_text;
    if (entry.front() == '[') {
        const auto close = entry.find(']');
        if (close == std::string_view::npos || close + 1 >= entry.size() || entry[close + 1] != ':')
            return Result<SafekeeperAddress>::error("\"" + shown +
                                                    "\": expected \"[ipv6-address]:port\"");
        address.host = std::string(entry.substr(1, close - 1));
        port_text = entry.substr(close + 2);
        for (char c : address.host) {
            if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.')
                return Result<SafekeeperAddress>::error("\"" + shown + "\": bad IPv6 address");
        }
    } else {
        const auto colon = entry.rfind(':');
        if (colon == std::string_view::npos)
            return Result<SafekeeperAddress>::error("\"" + shown +
                                                    "\": expected \"host:port\" (port missing)");
        address.host = std::string(entry.substr(0, colon));
        port_text = entry.substr(colon + 1);
        for (char c : address.host) {
            if (!valid_host_char(c))
                return Result<SafekeeperAddress>::error("\"" + shown +
                                                        "\": bad character in host name");
        }
    }
    if (address.host.empty())
        return Result<SafekeeperAddress>::error("\"" + shown + "\": empty host");
    if (address.host.size() > kMaxHostLength)
        return Result<SafekeeperAddress>::error("\"" + shown + "\": host name too long");
    if (port_text.empty() || port_text.size() > 5)
        return Result<SafekeeperAddress>::error("\"" + shown +
                                                "\": port must be a number from 1 to 65535");
    unsigned port = 0;
    for (char c : port_text) {
        if (c < '0' || c > '9')
            return Result<SafekeeperAddress>::error("\"" + shown +
                                                    "\": port must be a number from 1 to 65535");
        port = port * 10 + static_cast<unsigned>(c - '0');
    }
    if (port == 0 || port > 65535)
        return Result<SafekeeperAddress>::error("\"" + shown +
                                                "\": port must be a number from 1 to 65535");
    address.port = static_cast<std::uint16_t>(port);
    return address;
}

Result<std::vector<SafekeeperAddress>> parse_safekeeper_list(std::string_view text) {
    std::vector<SafekeeperAddress> list;
    if (trim(text).empty()) return list;
    std::size_t start = 0;
    while (start <= text.size()) {
        auto comma = text.find(',', start);
        if (comma == std::string_view::npos) comma = text.size();
        auto parsed = parse_safekeeper_address(trim(text.substr(start, comma - start)));
        if (!parsed) return parsed.status();
        for (const auto& existing : list) {
            if (existing == *parsed)
                return Result<std::vector<SafekeeperAddress>>::error(
                    "\"" + parsed->to_string() + "\" is listed twice");
        }
        list.push_back(std::move(*parsed));
        if (list.size() > kMaxSafekeepers)
            return Result<std::vector<SafekeeperAddress>>::error(
                "more than " + std::to_string(kMaxSafekeepers) + " safekeepers");
        start = comma + 1;
    }
    return list;
}

std::string default_id_from_system_id(std::uint64_t system_id) {
    char buf[33];
    std::snprintf(buf, sizeof buf, "%016llx%016llx", 0ULL,
                  static_cast<unsigned long long>(system_id));
    return buf;
}

}  // namespace wp
