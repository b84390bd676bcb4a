#include "auth/scram.h"

#include <cctype>
#include <charconv>
#include <vector>

namespace wp::sk {
namespace {

constexpr std::size_t kSaltBytes = 16;
constexpr std::size_t kNonceBytes = 18;

std::vector<std::string_view> split(std::string_view text, char sep) {
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    for (;;) {
        const std::size_t at = text.find(sep, start);
        parts.push_back(text.substr(start, at == std::string_view::npos ? at : at - start));
        if (at == std::string_view::npos) return parts;
        start = at + 1;
    }
}

Result<Sha256Digest> decode_key(std::string_view b64, const char* what) {
    auto raw = base64_decode(b64);
    if (!raw || raw->size() != 32)
        return Status::invalid(std::string("invalid ") + what + " in SCRAM secret");
    Sha256Digest out{};
    std::copy(raw->begin(), raw->end(), out.begin());
    return out;
}

// One "k=value" attribute at the front of `rest`; advances past its comma.
Result<std::string_view> take_attribute(std::string_view& rest, char key) {
    if (rest.size() < 2 || rest[0] != key || rest[1] != '=')
        return Status::invalid(std::string("malformed SCRAM message: expected attribute \"") + key +
                               "\"");
    const std::size_t comma = rest.find(',');
    std::string_view value = rest.substr(2, comma == std::string_view::npos ? comma : comma - 2);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    return value;
}

bool printable_nonce(std::string_view nonce) {
    if (nonce.empty()) return false;
    for (char c : nonce)
        if (c < 0x21 || c > 0x7e || c == ',') return false;
    return true;
}

Sha256Digest xor_digest(const Sha256Digest& a, const Sha256Digest& b) {
    Sha256Digest out{};
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = a[i] ^ b[i];
    return out;
}

struct DerivedKeys {
    Sha256Digest client_key, stored_key, server_key;
};

Result<DerivedKeys> derive_keys(const std::string& password, std::string_view salt,
                                int iterations) {
    auto salted = scram_salted_password(password, salt, iterations);
    if (!salted) return salted.status();
    auto client_key = hmac_sha256(as_bytes(*salted), "Client Key");
    if (!client_key) return client_key.status();
    auto stored_key = sha256(as_bytes(*client_key));
    if (!stored_key) return stored_key.status();
    auto server_key = hmac_sha256(as_bytes(*salted), "Server Key");
    if (!server_key) return server_key.status();
    return DerivedKeys{*client_key, *stored_key, *server_key};
}

Result<std::string> new_nonce() {
    auto raw = strong_random_bytes(kNonceBytes);
    if (!raw) return raw.status();
    return base64_encode(*raw);
}

}  // namespace

Result<ScramSecret> parse_scram_secret(std::string_view text) {
    // SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
    const auto parts = split(text, '$');
    if (parts.size() != 3 || parts[0] != kScramMechanism)
        return Status::invalid(
            "not a SCRAM-SHA-256 secret (expected "
            "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>)");
    const auto head = split(parts[1], ':');
    const auto keys = split(parts[2], ':');
    if (head.size() != 2 || keys.size() != 2)
        return Status::invalid("malformed SCRAM-SHA-256 secret");
    ScramSecret secret;
    const auto [end, ec] =
        std::from_chars(head[0].data(), head[0].data() + head[0].size(), secret.iterations);
    if (ec != std::errc() || end != head[0].data() + head[0].size() || secret.iterations < 1)
        return Status::invalid("invalid iteration count in SCRAM secret");
    auto salt = base64_decode(head[1]);
    if (!salt || salt->empty()) return Status::invalid("invalid salt in SCRAM secret");
    secret.salt = std::move(*salt);
    auto stored = decode_key(keys[0], "StoredKey");
    if (!stored) return stored.status();
    auto server = decode_key(keys[1], "ServerKey");
    if (!server) return server.status();
    secret.stored_key = *stored;
    secret.server_key = *server;
    return secret;
}

std::string format_scram_secret(const ScramSecret& secret) {
    return std::string(kScramMechanism) + "$" + std::to_string(secret.iterations) + ":" +
           base64_encode(secret.salt) + "$" + base64_encode(as_bytes(secret.stored_key)) + ":" +
           base64_encode(as_bytes(secret.server_key));
}

Result<ScramSecret> make_scram_secret(const std::string& password, int iterations) {
    auto salt = strong_random_bytes(kSaltBytes);
    if (!salt) return salt.status();
    auto keys = derive_keys(password, *salt, iterations);
    if (!keys) return keys.status();
    ScramSecret secret;
    secret.iterations = iterations;
    secret.salt = std::move(*salt);
    secret.stored_key = keys->stored_key;
    secret.server_key = keys->server_key;
    return secret;
}

Result<bool> scram_password_matches(const ScramSecret& secret, const std::string& password) {
    auto keys = derive_keys(password, secret.salt, secret.iterations);
    if (!keys) return keys.status();
    return equal_in_constant_time(as_bytes(keys->stored_key), as_bytes(secret.stored_key)) &&
           equal_in_constant_time(as_bytes(keys->server_key), as_bytes(secret.server_key));
}

ScramServerExchange::ScramServerExchange(std::optional<ScramSecret> secret, std::string role_name,
                                         std::string_view mock_key)
    : secret_(std::move(secret)), role_name_(std::move(role_name)) {
    if (!secret_) {
        // A salt that is stable per role name, so repeated attempts see the
        // same one, as for a real role.
        auto digest = hmac_sha256(mock_key, role_name_);
        const std::string_view bytes = digest ? as_bytes(*digest) : std::string_view("mock-salt-16byte");
        mock_.salt = std::string(bytes.substr(0, kSaltBytes));
    }
}

Result<std::string> ScramServerExchange::server_first(std::string_view client_first) {
    if (step_ != 0) return Status::invalid("SCRAM exchange out of order");
    step_ = 1;
    // gs2-header: cbind-flag "," [authzid] ","
    std::string_view rest = client_first;
    if (rest.size() < 3) return Status::invalid("malformed SCRAM client-first-message");
    if (rest[0] == 'p')
        return Status::invalid("channel binding was requested, but this server does not offer "
                               "SCRAM-SHA-256-PLUS");
    if ((rest[0] != 'n' && rest[0] != 'y') || rest[1] != ',')
        return Status::invalid("malformed SCRAM client-first-message: bad channel-binding flag");
    if (rest[2] != ',')
        return Status::invalid("an authorization identity in SCRAM is not supported");
    gs2_header_ = std::string(rest.substr(0, 3));
    rest.remove_prefix(3);
    client_first_bare_ = std::string(rest);
    if (rest.size() >= 2 && rest[0] == 'm' && rest[1] == '=')
        return Status::invalid("SCRAM extensions are not supported");
    auto user = take_attribute(rest, 'n');  // ignored: the startup packet names the role
    if (!user) return user.status();
    auto client_nonce = take_attribute(rest, 'r');
    if (!client_nonce) return client_nonce.status();
    if (!printable_nonce(*client_nonce))
        return Status::invalid("malformed SCRAM client-first-message: bad nonce");
    // Optional extensions follow; each must at least be an attribute.
    for (const std::string_view extension : rest.empty() ? std::vector<std::string_view>{}
                                                         : split(rest, ','))
        if (extension.size() < 2 || !std::isalpha(static_cast<unsigned char>(extension[0])) ||
            extension[1] != '=')
            return Status::invalid("malformed SCRAM client-first-message: bad extension");
    auto server_nonce = new_nonce();
    if (!server_nonce) return server_nonce.status();
    nonce_ = std::string(*client_nonce) + *server_nonce;
    const ScramSecret& s = secret_ ? *secret_ : mock_;
    server_first_ = "r=" + nonce_ + ",s=" + base64_encode(s.salt) + ",i=" +
                    std::to_string(s.iterations);
    return server_first_;
}

Result<std::string> ScramServerExchange::server_final(std::string_view client_final) {
    if (step_ != 1) return Status::invalid("SCRAM exchange out of order");
    step_ = 2;
    std::string_view rest = client_final;
    auto binding = take_attribute(rest, 'c');
    if (!binding) return binding.status();
    auto decoded_binding = base64_decode(*binding);
    if (!decoded_binding || *decoded_binding != gs2_header_)
        return Status::invalid("SCRAM channel binding data does not match the client-first-message");
    auto nonce = take_attribute(rest, 'r');
    if (!nonce) return nonce.status();
    if (*nonce != nonce_) return Status::invalid("SCRAM nonce does not match");
    // Extensions before the proof are not allowed; the proof is last.
    const std::size_t proof_at = client_final.rfind(",p=");
    if (proof_at == std::string_view::npos || rest.substr(0, 2) != "p=")
        return Status::invalid("malformed SCRAM client-final-message: no proof");
    auto proof_b64 = take_attribute(rest, 'p');
    if (!proof_b64) return proof_b64.status();
    if (!rest.empty()) return Status::invalid("malformed SCRAM client-final-message: trailing data");
    auto proof_raw = base64_decode(*proof_b64);
    if (!proof_raw || proof_raw->size() != 32)
        return Status::invalid("malformed SCRAM client proof");
    if (!secret_) return Status::error("role \"" + role_name_ + "\" does not exist");

    const std::string auth_message = client_first_bare_ + "," + server_first_ + "," +
                                     std::string(client_final.substr(0, proof_at));
    auto client_signature = hmac_sha256(as_bytes(secret_->stored_key), auth_message);
    if (!client_signature) return client_signature.status();
    Sha256Digest proof{};
    std::copy(proof_raw->begin(), proof_raw->end(), proof.begin());
    auto stored = sha256(as_bytes(xor_digest(proof, *client_signature)));
    if (!stored) return stored.status();
    if (!equal_in_constant_time(as_bytes(*stored), as_bytes(secret_->stored_key)))
        return Status::error("password does not match for role \"" + role_name_ + "\"");
    auto server_signature = hmac_sha256(as_bytes(secret_->server_key), auth_message);
    if (!server_signature) return server_signature.status();
    return "v=" + base64_encode(as_bytes(*server_signature));
}

ScramClientExchange::ScramClientExchange(std::string password) : password_(std::move(password)) {}

Result<std::string> ScramClientExchange::client_first() {
    if (step_ != 0) return Status::invalid("SCRAM exchange out of order");
    step_ = 1;
    auto nonce = new_nonce();
    if (!nonce) return nonce.status();
    client_nonce_ = *nonce;
    client_first_bare_ = "n=,r=" + client_nonce_;
    return "n,," + client_first_bare_;
}

Result<std::string> ScramClientExchange::client_final(std::string_view server_first) {
    if (step_ != 1) return Status::invalid("SCRAM exchange out of order");
    step_ = 2;
    std::string_view rest = server_first;
    auto nonce = take_attribute(rest, 'r');
    if (!nonce) return nonce.status();
    if (nonce->size() <= client_nonce_.size() || nonce->substr(0, client_nonce_.size()) != client_nonce_)
        return Status::invalid("the server's SCRAM nonce does not extend ours");
    auto salt_b64 = take_attribute(rest, 's');
    if (!salt_b64) return salt_b64.status();
    auto salt = base64_decode(*salt_b64);
    if (!salt || salt->empty()) return Status::invalid("invalid salt from the server");
    auto iterations_text = take_attribute(rest, 'i');
    if (!iterations_text) return iterations_text.status();
    int iterations = 0;
    const auto [end, ec] = std::from_chars(
        iterations_text->data(), iterations_text->data() + iterations_text->size(), iterations);
    if (ec != std::errc() || end != iterations_text->data() + iterations_text->size() ||
        iterations < 1 || iterations > 10000000)
        return Status::invalid("invalid iteration count from the server");
    auto keys = derive_keys(password_, *salt, iterations);
    if (!keys) return keys.status();
    const std::string without_proof = "c=biws,r=" + std::string(*nonce);  // biws = "n,,"
    const std::string auth_message =
        client_first_bare_ + "," + std::string(server_first) + "," + without_proof;
    auto client_signature = hmac_sha256(as_bytes(keys->stored_key), auth_message);
    if (!client_signature) return client_signature.status();
    auto server_signature = hmac_sha256(as_bytes(keys->server_key), auth_message);
    if (!server_signature) return server_signature.status();
    expected_server_signature_ = base64_encode(as_bytes(*server_signature));
    return without_proof + ",p=" +
           base64_encode(as_bytes(xor_digest(keys->client_key, *client_signature)));
}

Status ScramClientExchange::check_server_final(std::string_view server_final) {
    if (step_ != 2) return Status::invalid("SCRAM exchange out of order");
    step_ = 3;
    if (server_final.substr(0, 2) == "e=")
        return Status::error("the server refused the SCRAM proof: " +
                             std::string(server_final.substr(2)));
    if (server_final.substr(0, 2) != "v=" ||
        !equal_in_constant_time(server_final.substr(2), expected_server_signature_))
        return Status::invalid("the server's SCRAM signature is wrong (it does not hold our secret)");
    return Status();
}

}  // namespace wp::sk
