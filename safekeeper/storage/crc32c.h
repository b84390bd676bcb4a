// CRC-32C (Castagnoli), exactly PostgreSQL's pg_crc32c (the checksum of WAL
// records and of our control file), computed by libpgport's pg_comp_crc32c
// (hardware-accelerated where available).
//
// This header is PostgreSQL-free; only crc32c.cpp includes PG headers.
// Thread-safe; pure functions.
#pragma once

#include <cstddef>
#include <cstdint>

namespace wp::sk {

constexpr std::uint32_t kCrc32cInit = 0xFFFFFFFFu;  // INIT_CRC32C

// Continues a running CRC (start from kCrc32cInit) over `len` bytes: COMP_CRC32C.
std::uint32_t crc32c_update(std::uint32_t crc, const void* data, std::size_t len);
// Finalizes a running CRC: FIN_CRC32C.
inline std::uint32_t crc32c_finish(std::uint32_t crc) { return crc ^ 0xFFFFFFFFu; }

}  // namespace wp::sk

// One-shot CRC-32C of a buffer (INIT, COMP, FIN), as PostgreSQL computes it.
std::uint32_t wp_crc32c(const void* data, std::size_t len);
