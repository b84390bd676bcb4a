// The only safekeeper file that includes PostgreSQL headers: it binds our
// PG-free CRC API to libpgport's pg_comp_crc32c.
extern "C" {
#include "postgres_fe.h"

#include "port/pg_crc32c.h"
}

#include "storage/crc32c.h"

namespace wp::sk {

std::uint32_t crc32c_update(std::uint32_t crc, const void* data, std::size_t len) {
    pg_crc32c c = crc;
    COMP_CRC32C(c, data, len);
    return c;
}

}  // namespace wp::sk

std::uint32_t wp_crc32c(const void* data, std::size_t len) {
    pg_crc32c c;
    INIT_CRC32C(c);
    COMP_CRC32C(c, data, len);
    FIN_CRC32C(c);
    return c;
}
