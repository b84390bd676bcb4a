// Version of walproposer and safekeeper (one release number for both).
#pragma once

namespace wp {
inline constexpr const char kVersion[] = "1.0.0";
}  // namespace wp
