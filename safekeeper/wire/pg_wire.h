// PostgreSQL v3 frontend/backend protocol framing, server side, over one
// blocking TCP socket.
//
// Contract: a PgConnection owns its socket (closed in the destructor).
// Inbound: read_startup() handles SSLRequest (a TLS handshake when
// offer_tls() gave a context, else 'N') and GSSENCRequest ('N'), and returns
// the StartupMessage parameters; after a handshake every byte in both
// directions goes through TLS (the socket is then non-blocking and the
// waits below poll it); read_message() returns one
// typed frontend message. Lengths are checked against kMaxMessageBytes; a
// malformed or oversized frame, or a peer that hangs up mid-message, yields
// an error Status (the caller sends an ErrorResponse if it can and closes).
// Outbound: the send_* calls append to an output buffer; flush() writes it
// all (MSG_NOSIGNAL, EINTR and short writes handled).
// Time limits (ConnectionLimits; a stalled or slow client never holds a
// connection forever): read_startup() must complete within the startup
// limit of the connection's creation, and once part of a message has
// arrived the rest must follow within the message limit; either fails the
// read with kInvalidInput naming the limit. An idle connection between
// messages has no limit (a streaming proposer or consumer may be quiet).
// Thread-safety: one thread uses a connection; shutdown() may be called from
// any thread to wake a blocked reader (used on daemon shutdown and to evict
// a superseded proposer).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "walproposer/result.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace wp::sk {

constexpr std::uint32_t kMaxMessageBytes = 32u << 20;  // 32 MB
// Until a client has authenticated, its messages (SASL) are at most this
// long, as PostgreSQL's PG_MAX_AUTH_TOKEN_LENGTH.
constexpr std::uint32_t kMaxAuthMessageBytes = 65535;
constexpr std::uint32_t kMaxStartupBytes = 10000;      // as PostgreSQL's MAX_STARTUP_PACKET_LENGTH
struct ConnectionLimits {
    int startup_timeout_ms = 10000;  // connect -> complete StartupMessage
    int message_timeout_ms = 30000;  // first byte of a message -> its last
};

struct StartupMessage {
    std::uint32_t protocol = 0;
    std::map<std::string, std::string> params;
};

struct FrontendMessage {
    char type = 0;
    std::string payload;  // without the type byte and length word
};

// SQLSTATEs we use.
namespace sqlstate {
constexpr const char kProtocolViolation[] = "08P01";
constexpr const char kFeatureNotSupported[] = "0A000";
constexpr const char kSyntaxError[] = "42601";
constexpr const char kInsufficientPrivilege[] = "42501";  // a fenced proposer
constexpr const char kInvalidParameterValue[] = "22023";
constexpr const char kUndefinedObject[] = "42704";
constexpr const char kObjectNotInPrerequisiteState[] = "55000";
constexpr const char kTooManyConnections[] = "53300";
constexpr const char kDataCorrupted[] = "XX001";
constexpr const char kInternalError[] = "XX000";
constexpr const char kAdminShutdown[] = "57P01";
constexpr const char kIoError[] = "58030";
constexpr const char kUndefinedFile[] = "58P01";
constexpr const char kDiskFull[] = "53100";
constexpr const char kInsufficientResources[] = "53000";  // out of file descriptors, memory
constexpr const char kDuplicateObject[] = "42710";
constexpr const char kInvalidName[] = "42602";
constexpr const char kConfigurationLimitExceeded[] = "53400";
constexpr const char kInvalidPassword[] = "28P01";
constexpr const char kInvalidAuthorization[] = "28000";
}  // namespace sqlstate

// Type OIDs of the result columns we send (PostgreSQL's pg_type.h).
constexpr std::uint32_t kTextOid = 25, kInt4Oid = 23, kInt8Oid = 20, kByteaOid = 17;

class PgConnection {
public:
    PgConnection(int fd, std::string peer, ConnectionLimits limits = {});
    ~PgConnection();
    PgConnection(const PgConnection&) = delete;
    PgConnection& operator=(const PgConnection&) = delete;

    const std::string& peer() const { return peer_; }
    int fd() const { return fd_; }
    // Answer SSLRequest with a handshake on `ctx` (not owned; must outlive
    // the connection). Call before read_startup().
    void offer_tls(SSL_CTX* ctx) { tls_ctx_ = ctx; }
    // True once a TLS handshake has completed.
    bool tls() const { return ssl_ != nullptr; }
    // The longest message read_message() accepts (kMaxMessageBytes unless
    // lowered, e.g. to kMaxAuthMessageBytes before authentication).
    void set_max_message_bytes(std::uint32_t n) { max_message_bytes_ = n; }

    Result<StartupMessage> read_startup();
    Result<FrontendMessage> read_message();
    // True if a complete message can be read without blocking (buffered, or
    // already arrived on the socket). Never blocks.
    bool message_ready();

    void send_auth_ok();
    // SASL authentication (SCRAM-SHA-256): the mechanisms offered, then the
    // server's challenge (code 11, SASLContinue) and outcome (code 12,
    // SASLFinal). The client answers with 'p' messages (read_message).
    void send_auth_sasl(const std::vector<std::string>& mechanisms);
    void send_auth_sasl_data(std::uint32_t code, const std::string& data);
    void send_parameter_status(const std::string& name, const std::string& value);
    void send_backend_key_data(std::uint32_t pid, std::uint32_t key);
    void send_ready_for_query();
    void send_error(const std::string& sqlstate, const std::string& message,
                    const char* severity = "ERROR");
    void send_copy_both_response();
    void send_copy_data(const std::uint8_t* data, std::size_t len);
    void send_copy_done();
    void send_command_complete(const std::string& tag);
    void send_empty_query_response();
    // A one-column-or-more text result: RowDescription + DataRows + CommandComplete.
    void send_simple_result(const std::vector<std::string>& columns,
                            const std::vector<std::vector<std::string>>& rows,
                            const std::string& tag);
    // Same with a type OID per column and NULLs (nullopt); values are sent
    // as given (text format).
    struct Column {
        std::string name;
        std::uint32_t type_oid = 25;  // text
    };
    void send_typed_result(const std::vector<Column>& columns,
                           const std::vector<std::vector<std::optional<std::string>>>& rows,
                           const std::string& tag);
    Status flush();
    // Bytes queued by send_* and not yet flushed.
    std::size_t pending_output() const { return out_.size(); }

    // Wakes a blocked reader/writer (shutdown(2) both directions). Thread-safe.
    void shutdown();

private:
    // Ensures `n` bytes are buffered (blocking). false + status on EOF/error.
    Status fill(std::size_t n);
    Status recv_some(bool nonblocking, bool& got_any);
    Status start_tls();
    // Waits for `events` on the socket until `deadline_ms` (0: forever).
    Status wait_socket(short events, std::int64_t deadline_ms, const char* what);
    void begin_message(char type);
    void end_message();
    void put_cstr(const std::string& s);

    int fd_;
    SSL_CTX* tls_ctx_ = nullptr;
    SSL* ssl_ = nullptr;
    std::uint32_t max_message_bytes_ = kMaxMessageBytes;
    std::string peer_;
    ConnectionLimits limits_;
    bool in_startup_ = true;
    std::int64_t startup_deadline_ms_ = 0;  // CLOCK_MONOTONIC ms
    std::vector<char> in_;    // [in_pos_, in_end_) is received and not yet consumed
    std::size_t in_pos_ = 0;
    std::size_t in_end_ = 0;
    std::string out_;
    std::size_t msg_start_ = 0;
};

}  // namespace wp::sk
