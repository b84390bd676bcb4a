#include "wire/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdio>

namespace wp::sk {

std::string openssl_error_text() {
    std::string text;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!text.empty()) text += "; ";
        text += buf;
    }
    return text;
}

struct TlsServerConfig::Material {
    X509* cert = nullptr;
    STACK_OF(X509)* chain = nullptr;
    EVP_PKEY* key = nullptr;
    ~Material() {
        X509_free(cert);
        sk_X509_pop_free(chain, X509_free);
        EVP_PKEY_free(key);
    }
};

TlsServerConfig::TlsServerConfig(std::string cert_file, std::string key_file)
    : cert_file_(std::move(cert_file)), key_file_(std::move(key_file)) {
    pg_ctx_ = SSL_CTX_new(TLS_server_method());
    if (pg_ctx_ != nullptr) configure(pg_ctx_);
}

TlsServerConfig::~TlsServerConfig() { SSL_CTX_free(pg_ctx_); }

bool TlsServerConfig::configure(SSL_CTX* ctx) const {
    if (ctx == nullptr) return false;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_cert_cb(ctx, &TlsServerConfig::select_certificate,
                        const_cast<TlsServerConfig*>(this));
    return true;
}

std::shared_ptr<const TlsServerConfig::Material> TlsServerConfig::current() const {
    std::lock_guard<std::mutex> lock(mu_);
    return material_;
}

int TlsServerConfig::select_certificate(SSL* ssl, void* arg) {
    auto material = static_cast<TlsServerConfig*>(arg)->current();
    if (!material) return 0;
    if (SSL_use_certificate(ssl, material->cert) != 1) return 0;
    if (SSL_use_PrivateKey(ssl, material->key) != 1) return 0;
    if (material->chain && SSL_set1_chain(ssl, material->chain) != 1) return 0;
    return 1;
}

Status TlsServerConfig::reload() {
    if (pg_ctx_ == nullptr) return Status::error("cannot create a TLS context: " + openssl_error_text());
    auto material = std::make_shared<Material>();
    FILE* f = std::fopen(cert_file_.c_str(), "r");
    if (f == nullptr) return Status::from_errno("cannot read TLS certificate " + cert_file_, errno);
    material->cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
    if (material->cert != nullptr) {
        material->chain = sk_X509_new_null();
        while (X509* extra = PEM_read_X509(f, nullptr, nullptr, nullptr))
            sk_X509_push(material->chain, extra);
        ERR_clear_error();  // the end of the file reads as an error
    }
    std::fclose(f);
    if (material->cert == nullptr)
        return Status::invalid("TLS certificate " + cert_file_ + " holds no PEM certificate: " +
                               openssl_error_text());
    f = std::fopen(key_file_.c_str(), "r");
    if (f == nullptr) return Status::from_errno("cannot read TLS key " + key_file_, errno);
    material->key = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
    std::fclose(f);
    if (material->key == nullptr)
        return Status::invalid("TLS key " + key_file_ + " holds no PEM private key (or it is " +
                               "encrypted): " + openssl_error_text());
    if (X509_check_private_key(material->cert, material->key) != 1) {
        ERR_clear_error();
        return Status::invalid("TLS key " + key_file_ + " does not belong to the certificate " +
                               cert_file_);
    }
    std::lock_guard<std::mutex> lock(mu_);
    material_ = std::move(material);
    return Status();
}

Result<std::shared_ptr<TlsClientConfig>> TlsClientConfig::create(const std::string& ca_file) {
    std::shared_ptr<TlsClientConfig> config(new TlsClientConfig());
    config->ctx_ = SSL_CTX_new(TLS_client_method());
    if (config->ctx_ == nullptr)
        return Status::error("cannot create a TLS context: " + openssl_error_text());
    SSL_CTX_set_min_proto_version(config->ctx_, TLS1_2_VERSION);
    config->ca_file_ = ca_file;
    if (!ca_file.empty()) {
        if (SSL_CTX_load_verify_locations(config->ctx_, ca_file.c_str(), nullptr) != 1)
            return Status::invalid("cannot read TLS CA file " + ca_file + ": " +
                                   openssl_error_text());
        SSL_CTX_set_verify(config->ctx_, SSL_VERIFY_PEER, nullptr);
    }
    return config;
}

TlsClientConfig::~TlsClientConfig() { SSL_CTX_free(ctx_); }

}  // namespace wp::sk
