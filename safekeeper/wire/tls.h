// TLS for both safekeeper ports (OpenSSL): the server's certificate and key,
// and the client side the daemon uses towards its peers.
//
// Contract: TlsServerConfig owns one SSL_CTX for the PostgreSQL-protocol
// port and can set up any other SSL_CTX (cpp-httplib's, for HTTPS) the same
// way. Every context takes the certificate at each handshake from the
// current material (SSL_CTX_set_cert_cb), so reload() swaps certificate and
// key for new connections without touching open ones. TLS 1.2 is the
// oldest version offered. load()/reload() check that the key matches the
// certificate; a failed reload keeps the previous material. Thread-safe.
//
// TlsClientConfig: a client context that verifies the server's certificate
// against a CA file and its name (libpq's sslmode=verify-full), or, with no
// CA file, encrypts without verifying (sslmode=require).
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "walproposer/result.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace wp::sk {

class TlsServerConfig {
public:
    TlsServerConfig(std::string cert_file, std::string key_file);
    ~TlsServerConfig();
    TlsServerConfig(const TlsServerConfig&) = delete;
    TlsServerConfig& operator=(const TlsServerConfig&) = delete;

    // Reads the certificate chain and the key (first use or SIGHUP).
    Status reload();
    // The context of the PostgreSQL-protocol port (valid after a successful
    // reload(); owned by this object).
    SSL_CTX* pg_context() const { return pg_ctx_; }
    // Sets up another server context (HTTPS) to use this material.
    bool configure(SSL_CTX* ctx) const;
    const std::string& cert_file() const { return cert_file_; }

private:
    struct Material;
    static int select_certificate(SSL* ssl, void* arg);
    std::shared_ptr<const Material> current() const;

    std::string cert_file_, key_file_;
    SSL_CTX* pg_ctx_ = nullptr;
    mutable std::mutex mu_;
    std::shared_ptr<const Material> material_;
};

class TlsClientConfig {
public:
    // `ca_file` empty: encrypt, do not verify.
    static Result<std::shared_ptr<TlsClientConfig>> create(const std::string& ca_file);
    ~TlsClientConfig();
    SSL_CTX* context() const { return ctx_; }
    const std::string& ca_file() const { return ca_file_; }
    bool verifies() const { return !ca_file_.empty(); }

private:
    TlsClientConfig() = default;
    SSL_CTX* ctx_ = nullptr;
    std::string ca_file_;
};

// The last OpenSSL error as text ("" if none); clears the error queue.
std::string openssl_error_text();

}  // namespace wp::sk
