// Tenant and timeline ids: 128-bit values written as exactly 32 hexadecimal
// digits (either case on input, lower case on output), and the key that
// names one timeline. The project's one parser and formatter of these ids,
// used by the extension's settings, the tools, the safekeeper's startup
// options, HTTP paths and data directories.
//
// Contract: parsing never throws and reports what is wrong in a message fit
// for users ("must be exactly 32 hexadecimal digits, got 4 characters",
// "must contain only hexadecimal digits"); callers prefix what they parsed.
// Plain values; no shared state.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "walproposer/result.h"

namespace wp {

using Id128 = std::array<std::uint8_t, 16>;  // tenant, timeline, proposer ids

constexpr std::size_t kIdHexDigits = 32;

// Exactly 32 hexadecimal digits, either case.
Result<Id128> parse_id(std::string_view hex);
// 32 lower-case hexadecimal digits.
std::string format_id(const Id128& id);
// The id's canonical spelling: parse_id, then format_id (lower case).
Result<std::string> parse_hex_id(std::string_view hex);

// One timeline: (tenant, timeline). Ordered, so it can key a map.
struct TimelineKey {
    Id128 tenant{};
    Id128 timeline{};

    bool operator==(const TimelineKey& o) const {
        return tenant == o.tenant && timeline == o.timeline;
    }
    bool operator!=(const TimelineKey& o) const { return !(*this == o); }
    bool operator<(const TimelineKey& o) const {
        return tenant != o.tenant ? tenant < o.tenant : timeline < o.timeline;
    }
    // "<tenant hex>/<timeline hex>".
    std::string to_string() const { return format_id(tenant) + "/" + format_id(timeline); }
};

}  // namespace wp
