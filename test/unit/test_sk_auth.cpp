// Authentication building blocks of the safekeeper: SCRAM-SHA-256 (checked
// against RFC 7677's example exchange), the roles file, permissions, and the
// HTTP API's access rules. Real clients (libpq: psql, the walproposer worker,
// standbys) are exercised by test/t/112_safekeeper_auth.pl.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "auth/roles.h"
#include "auth/scram.h"
#include "http/http_auth.h"

using namespace wp;
using namespace wp::sk;

namespace {

std::string raw(const Sha256Digest& d) { return std::string(as_bytes(d)); }

Sha256Digest xor_of(const Sha256Digest& a, const Sha256Digest& b) {
    Sha256Digest out{};
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = a[i] ^ b[i];
    return out;
}

// Runs a whole exchange between our client and server.
struct ExchangeOutcome {
    Status server;
    Status client;
};

ExchangeOutcome run_exchange(const std::optional<ScramSecret>& secret, const std::string& password) {
    ScramServerExchange server(secret, "alice", "mock key");
    ScramClientExchange client(password);
    auto first = client.client_first();
    REQUIRE(first.ok());
    auto server_first = server.server_first(*first);
    REQUIRE(server_first.ok());
    auto client_final = client.client_final(*server_first);
    REQUIRE(client_final.ok());
    auto server_final = server.server_final(*client_final);
    if (!server_final) return {server_final.status(), Status()};
    return {Status(), client.check_server_final(*server_final)};
}

const char kTenantA[] = "0123456789abcdef0123456789abcdef";
const char kTenantB[] = "fedcba9876543210fedcba9876543210";

}  // namespace

TEST_CASE("SCRAM primitives reproduce RFC 7677's example exchange", "[auth]") {
    // RFC 7677, section 3: user "user", password "pencil".
    auto salt = base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==");
    REQUIRE(salt.ok());
    auto salted = scram_salted_password("pencil", *salt, 4096);
    REQUIRE(salted.ok());
    const std::string auth_message =
        "n=user,r=rOprNGfwEbeRWgbNEkqO,"
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    auto client_key = hmac_sha256(raw(*salted), "Client Key");
    auto stored_key = sha256(raw(*client_key));
    auto client_signature = hmac_sha256(raw(*stored_key), auth_message);
    CHECK(base64_encode(raw(xor_of(*client_key, *client_signature))) ==
          "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
    auto server_key = hmac_sha256(raw(*salted), "Server Key");
    auto server_signature = hmac_sha256(raw(*server_key), auth_message);
    CHECK(base64_encode(raw(*server_signature)) == "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
}

TEST_CASE("SCRAM secrets: made, printed, parsed, checked", "[auth]") {
    auto secret = make_scram_secret("correct horse");
    REQUIRE(secret.ok());
    const std::string text = format_scram_secret(*secret);
    CHECK(text.rfind("SCRAM-SHA-256$4096:", 0) == 0);
    auto parsed = parse_scram_secret(text);
    REQUIRE(parsed.ok());
    CHECK(parsed->salt == secret->salt);
    CHECK(parsed->stored_key == secret->stored_key);
    CHECK(parsed->server_key == secret->server_key);
    CHECK(*scram_password_matches(*parsed, "correct horse"));
    CHECK_FALSE(*scram_password_matches(*parsed, "correct horsE"));
    // Two secrets of one password differ (random salt).
    CHECK(format_scram_secret(*make_scram_secret("correct horse")) != text);

    for (const char* bad : {"", "md5abcdef", "SCRAM-SHA-256$4096:c2FsdA==$abc",
                            "SCRAM-SHA-256$0:c2FsdA==$AAAA:AAAA",
                            "SCRAM-SHA-256$x:c2FsdA==$AAAA:AAAA",
                            "SCRAM-SHA-256$4096:***$AAAA:AAAA"}) {
        INFO(bad);
        CHECK_FALSE(parse_scram_secret(bad).ok());
    }
}

TEST_CASE("SCRAM exchange: the right password passes, a wrong one or an unknown role fails",
          "[auth]") {
    auto secret = make_scram_secret("s3cret");
    REQUIRE(secret.ok());
    ExchangeOutcome ok = run_exchange(*secret, "s3cret");
    CHECK(ok.server.ok());
    CHECK(ok.client.ok());

    ExchangeOutcome wrong = run_exchange(*secret, "guess");
    REQUIRE_FALSE(wrong.server.ok());
    CHECK(wrong.server.kind() == StatusKind::kError);
    CHECK(wrong.server.message().find("password does not match") != std::string::npos);

    ExchangeOutcome unknown = run_exchange(std::nullopt, "s3cret");
    REQUIRE_FALSE(unknown.server.ok());
    CHECK(unknown.server.kind() == StatusKind::kError);
    CHECK(unknown.server.message().find("does not exist") != std::string::npos);
}

TEST_CASE("SCRAM exchange: an unknown role gets a stable salt like a real one", "[auth]") {
    auto first_salt = [](const std::string& role) {
        ScramServerExchange server(std::nullopt, role, "key");
        auto reply = server.server_first("n,,n=,r=abcdef");
        REQUIRE(reply.ok());
        return reply->substr(reply->find(",s="));
    };
    CHECK(first_salt("mallory") == first_salt("mallory"));
    CHECK(first_salt("mallory") != first_salt("trudy"));
}

TEST_CASE("SCRAM exchange: malformed or tampered client messages are protocol errors", "[auth]") {
    auto secret = *make_scram_secret("pw");
    for (const char* bad_first : {"", "n,", "p=tls-server-end-point,,n=,r=abc", "n,a=bob,n=,r=abc",
                                  "x,,n=,r=abc", "n,,r=abc", "n,,n=,r=", "n,,n=,r=a,b",
                                  "n,,m=ext,n=,r=abc"}) {
        INFO(bad_first);
        ScramServerExchange server(secret, "alice", "k");
        auto r = server.server_first(bad_first);
        REQUIRE_FALSE(r.ok());
        CHECK(r.status().kind() == StatusKind::kInvalidInput);
    }
    // A client-final with another nonce, another binding, or no proof.
    ScramClientExchange client("pw");
    ScramServerExchange server(secret, "alice", "k");
    auto first = *client.client_first();
    auto server_first = *server.server_first(first);
    const std::string good = *client.client_final(server_first);
    const std::string nonce = server_first.substr(2, server_first.find(',') - 2);
    for (std::string bad : {std::string("c=biws,r=") + nonce + "X" + good.substr(good.find(",p=")),
                            std::string("c=eSws,r=") + nonce + good.substr(good.find(",p=")),
                            std::string("c=biws,r=") + nonce, good + ",x=1"}) {
        INFO(bad);
        ScramServerExchange fresh(secret, "alice", "k");
        // Replay the same first message so the nonce state exists.
        auto sf = fresh.server_first(first);
        REQUIRE(sf.ok());
        std::string adjusted = bad;
        const std::string fresh_nonce = sf->substr(2, sf->find(',') - 2);
        if (auto at = adjusted.find(nonce); at != std::string::npos)
            adjusted.replace(at, nonce.size(), fresh_nonce);
        auto r = fresh.server_final(adjusted);
        REQUIRE_FALSE(r.ok());
        CHECK(r.status().kind() == StatusKind::kInvalidInput);
    }
    // Out of order.
    ScramServerExchange early(secret, "alice", "k");
    CHECK_FALSE(early.server_final(good).ok());
}

TEST_CASE("roles file: permissions, tenants and secrets; errors name the line", "[auth]") {
    const std::string secret = format_scram_secret(*make_scram_secret("pw"));
    const std::string text = "# name perms tenants secret\n\n"
                             "walproposer push * " + secret + "\n"
                             "replica read " + std::string(kTenantA) + "," + kTenantB + " " + secret +
                             "  # two tenants\n"
                             "ops admin,read * " + secret + "\n";
    auto roles = parse_roles_file(text, "roles.conf");
    REQUIRE(roles.ok());
    REQUIRE(roles->size() == 3);
    const Principal proposer = principal_of(roles->at("walproposer"));
    const Principal replica = principal_of(roles->at("replica"));
    const Principal ops = principal_of(roles->at("ops"));
    const Id128 a = *parse_id(kTenantA), b = *parse_id(kTenantB),
                c = *parse_id("00000000000000000000000000000001");
    CHECK(proposer.may(kPermPush, c));
    CHECK_FALSE(proposer.may(kPermRead));
    CHECK(replica.may(kPermRead, a));
    CHECK(replica.may(kPermRead, b));
    CHECK_FALSE(replica.may(kPermRead, c));
    CHECK_FALSE(replica.may(kPermPush, a));
    CHECK(ops.may(kPermAdmin, c));
    CHECK(ops.may(kPermRead, c));
    CHECK_FALSE(ops.may(kPermPush, c));  // admin does not include push
    CHECK(trusted_principal().may(kPermPush | kPermRead | kPermAdmin, c));

    struct Bad {
        std::string text;
        std::string error;
    };
    for (const Bad& bad : std::vector<Bad>{
             {"a push *\n", "roles.conf:1: expected 4 fields"},
             {"\nbob write * " + secret, "roles.conf:2: unknown permission \"write\""},
             {"bob read 1234 " + secret, "roles.conf:1: tenant \"1234\""},
             {"bob read * md5abc", "roles.conf:1: not a SCRAM-SHA-256 secret"},
             {"b/b read * " + secret, "roles.conf:1: invalid role name"},
             {"bob read * " + secret + "\nbob push * " + secret, "roles.conf:2: role \"bob\" is listed twice"},
         }) {
        INFO(bad.text);
        auto r = parse_roles_file(bad.text, "roles.conf");
        REQUIRE_FALSE(r.ok());
        CHECK(r.status().message().rfind(bad.error, 0) == 0);
    }
}

TEST_CASE("authenticator: loads, checks passwords, keeps old roles on a bad reload", "[auth]") {
    char dir_template[] = "/tmp/wp-auth-XXXXXX";
    REQUIRE(::mkdtemp(dir_template) != nullptr);
    const std::string path = std::string(dir_template) + "/roles";
    auto write = [&](const std::string& text) { std::ofstream(path) << text; };
    write("ops admin * " + format_scram_secret(*make_scram_secret("right")) + "\n");
    Authenticator auth(AuthMode::kScram, path);
    REQUIRE(auth.load().ok());
    CHECK(auth.role_count() == 1);
    auto p = auth.check_password("ops", "right");
    REQUIRE(p.ok());
    CHECK(p->role == "ops");
    CHECK(auth.check_password("ops", "right").ok());  // from the cache
    CHECK_FALSE(auth.check_password("ops", "wrong").ok());
    CHECK_FALSE(auth.check_password("nobody", "right").ok());

    write("ops admin * not-a-secret\n");
    Status reloaded = auth.load();
    CHECK_FALSE(reloaded.ok());
    CHECK(reloaded.message().find(path + ":1:") != std::string::npos);
    CHECK(auth.check_password("ops", "right").ok());  // the old roles stay

    write("ops admin * " + format_scram_secret(*make_scram_secret("new")) + "\n");
    REQUIRE(auth.load().ok());
    CHECK_FALSE(auth.check_password("ops", "right").ok());  // the cache was cleared
    CHECK(auth.check_password("ops", "new").ok());
    std::remove(path.c_str());
    ::rmdir(dir_template);
}

TEST_CASE("HTTP access rules and Basic credentials", "[auth]") {
    const std::string tl = std::string("/v1/tenant/") + kTenantA + "/timeline/" + kTenantB;
    auto status = http_access_rule("GET", "/v1/status");
    CHECK(status.monitoring);
    CHECK(status.permission == 0);
    CHECK(http_access_rule("GET", "/metrics").monitoring);
    CHECK_FALSE(http_access_rule("DELETE", "/v1/status").monitoring);
    auto get = http_access_rule("GET", tl);
    CHECK(get.permission == kPermRead);
    REQUIRE(get.tenant);
    CHECK(*get.tenant == *parse_id(kTenantA));
    CHECK(http_access_rule("GET", tl + "/wal").permission == kPermRead);
    CHECK(http_access_rule("DELETE", tl).permission == kPermAdmin);
    CHECK(http_access_rule("POST", tl + "/pull_timeline").permission == kPermAdmin);
    CHECK(http_access_rule("POST", "/v1/anything").permission == kPermAdmin);
    CHECK_FALSE(http_access_rule("GET", "/v1/tenant/xyz/timeline/1").tenant.has_value());

    auto creds = parse_basic_authorization(basic_authorization("ops", "pa:ss"));
    REQUIRE(creds.ok());
    CHECK(creds->first == "ops");
    CHECK(creds->second == "pa:ss");
    for (const char* bad : {"", "Bearer abc", "Basic", "Basic !!!", "Basic OnBhc3M="}) {
        INFO(bad);
        CHECK_FALSE(parse_basic_authorization(bad).ok());
    }
}
