// Binds scram_crypto.h to libpgcommon (SCRAM, HMAC, SHA-256, base64,
// SASLprep) and libpgport (strong random). Frontend headers only.
extern "C" {
#include "postgres_fe.h"

#include "common/base64.h"
#include "common/cryptohash.h"
#include "common/hmac.h"
#include "common/saslprep.h"
#include "common/scram-common.h"
}

#include "auth/scram_crypto.h"

#include <cstdlib>

namespace wp::sk {

Result<Sha256Digest> sha256(std::string_view data) {
    Sha256Digest out{};
    pg_cryptohash_ctx* ctx = pg_cryptohash_create(PG_SHA256);
    if (ctx == nullptr) return Status::error("SHA-256: out of memory");
    const bool ok = pg_cryptohash_init(ctx) == 0 &&
                    pg_cryptohash_update(ctx, reinterpret_cast<const uint8*>(data.data()),
                                         data.size()) == 0 &&
                    pg_cryptohash_final(ctx, out.data(), out.size()) == 0;
    std::string error = ok ? "" : pg_cryptohash_error(ctx);
    pg_cryptohash_free(ctx);
    if (!ok) return Status::error("SHA-256: " + error);
    return out;
}

Result<Sha256Digest> hmac_sha256(std::string_view key, std::string_view data) {
    Sha256Digest out{};
    pg_hmac_ctx* ctx = pg_hmac_create(PG_SHA256);
    if (ctx == nullptr) return Status::error("HMAC-SHA-256: out of memory");
    const bool ok =
        pg_hmac_init(ctx, reinterpret_cast<const uint8*>(key.data()), key.size()) == 0 &&
        pg_hmac_update(ctx, reinterpret_cast<const uint8*>(data.data()), data.size()) == 0 &&
        pg_hmac_final(ctx, out.data(), out.size()) == 0;
    std::string error = ok ? "" : pg_hmac_error(ctx);
    pg_hmac_free(ctx);
    if (!ok) return Status::error("HMAC-SHA-256: " + error);
    return out;
}

Result<Sha256Digest> scram_salted_password(const std::string& password, std::string_view salt,
                                           int iterations) {
    if (iterations < 1) return Status::invalid("SCRAM iteration count must be positive");
    // As PostgreSQL: use the normalised form when SASLprep succeeds, the
    // raw bytes otherwise (e.g. a password that is not valid UTF-8).
    char* prepared = nullptr;
    const pg_saslprep_rc rc = pg_saslprep(password.c_str(), &prepared);
    if (rc == SASLPREP_OOM) return Status::error("SASLprep: out of memory");
    const std::string normalised = rc == SASLPREP_SUCCESS ? std::string(prepared) : password;
    std::free(prepared);
    Sha256Digest out{};
    const char* error = nullptr;
    if (scram_SaltedPassword(normalised.c_str(), salt.data(), static_cast<int>(salt.size()),
                             iterations, out.data(), &error) != 0)
        return Status::error(std::string("SCRAM salted password: ") +
                             (error ? error : "failed"));
    return out;
}

std::string base64_encode(std::string_view bytes) {
    std::string out(static_cast<std::size_t>(pg_b64_enc_len(static_cast<int>(bytes.size()))) + 1,
                    '\0');
    const int n = pg_b64_encode(bytes.data(), static_cast<int>(bytes.size()), out.data(),
                                static_cast<int>(out.size()));
    out.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
    return out;
}

Result<std::string> base64_decode(std::string_view text) {
    std::string out(static_cast<std::size_t>(pg_b64_dec_len(static_cast<int>(text.size()))) + 1,
                    '\0');
    const int n = pg_b64_decode(text.data(), static_cast<int>(text.size()), out.data(),
                                static_cast<int>(out.size()));
    if (n < 0) return Status::invalid("invalid base64");
    out.resize(static_cast<std::size_t>(n));
    return out;
}

Result<std::string> strong_random_bytes(std::size_t length) {
    std::string out(length, '\0');
    if (!pg_strong_random(out.data(), length))
        return Status::error("cannot read from the strong random source");
    return out;
}

bool equal_in_constant_time(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    unsigned char diff = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        diff |= static_cast<unsigned char>(a[i] ^ b[i]);
    return diff == 0;
}

}  // namespace wp::sk
