// The cryptographic primitives SCRAM-SHA-256 needs, from PostgreSQL's
// libpgcommon/libpgport (the same code PostgreSQL and libpq use), behind a
// header free of PostgreSQL includes. scram_crypto.cpp is, with
// storage/crc32c.cpp, the only daemon file that includes PostgreSQL
// (frontend) headers.
//
// Contract: pure functions, thread-safe, no global state; failures (out of
// memory, a password that SASLprep refuses, OpenSSL errors) are values.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "walproposer/result.h"

namespace wp::sk {

using Sha256Digest = std::array<std::uint8_t, 32>;

// SHA-256 of `data`.
Result<Sha256Digest> sha256(std::string_view data);
// HMAC-SHA-256 of `data` under `key`.
Result<Sha256Digest> hmac_sha256(std::string_view key, std::string_view data);
// RFC 5802 Hi(): PBKDF2 of the SASLprep-normalised password (normalised as
// PostgreSQL does: a password SASLprep cannot normalise is used as is).
Result<Sha256Digest> scram_salted_password(const std::string& password, std::string_view salt,
                                           int iterations);
// Standard base64 (with padding); decode fails on anything else.
std::string base64_encode(std::string_view bytes);
Result<std::string> base64_decode(std::string_view text);
// `length` bytes from the operating system's strong random source.
Result<std::string> strong_random_bytes(std::size_t length);

// Length-safe constant-time comparison.
bool equal_in_constant_time(std::string_view a, std::string_view b);

inline std::string_view as_bytes(const Sha256Digest& d) {
    return std::string_view(reinterpret_cast<const char*>(d.data()), d.size());
}

}  // namespace wp::sk
