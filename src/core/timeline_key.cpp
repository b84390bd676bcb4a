#include "walproposer/timeline_key.h"

namespace wp {
namespace {

int hex_digit_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

Result<Id128> parse_id(std::string_view hex) {
    if (hex.size() != kIdHexDigits)
        return Result<Id128>::error("must be exactly 32 hexadecimal digits, got " +
                                    std::to_string(hex.size()) + " characters");
    Id128 id{};
    for (std::size_t i = 0; i < kIdHexDigits; ++i) {
        const int v = hex_digit_value(hex[i]);
        if (v < 0) return Result<Id128>::error("must contain only hexadecimal digits");
        id[i / 2] = static_cast<std::uint8_t>(id[i / 2] | (i % 2 == 0 ? v << 4 : v));
    }
    return id;
}

std::string format_id(const Id128& id) {
    static const char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(kIdHexDigits);
    for (std::uint8_t b : id) {
        out.push_back(kHex[b >> 4]);
        out.push_back(kHex[b & 15]);
    }
    return out;
}

Result<std::string> parse_hex_id(std::string_view hex) {
    auto id = parse_id(hex);
    if (!id) return id.status();
    return format_id(*id);
}

}  // namespace wp
