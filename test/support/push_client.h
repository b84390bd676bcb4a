// A minimal blocking client of the safekeeper's START_WAL_PUSH stream, for
// tests and the ingest benchmark (the real proposer lives in src/pg/ and
// uses libpq). Speaks just enough of the v3 protocol: startup with
// options='-c tenant_id=.. -c timeline_id=..', trust auth, simple query,
// CopyBoth with one core message per CopyData.
//
// Not thread-safe; one owner. Errors are values.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "walproposer/result.h"
#include "walproposer/messages.h"

namespace wp::sk {

class PushClient {
public:
    PushClient() = default;
    ~PushClient();
    PushClient(const PushClient&) = delete;
    PushClient& operator=(const PushClient&) = delete;

    // Connects and authenticates; `params` are extra startup parameters
    // (e.g. {"options", "-c tenant_id=..."}).
    Status connect(const std::string& host, std::uint16_t port, const std::map<std::string, std::string>& params);
    // Sends a simple query and, for START_WAL_PUSH, waits for CopyBothResponse.
    Status start_wal_push();
    // Sends a simple query and collects the messages up to ReadyForQuery;
    // returns the ErrorResponse message text, or "" when there was none.
    Result<std::string> simple_query(const std::string& sql);
    Status send(const Message& m);   // buffered
    Status flush();
    Result<Message> receive();       // next CopyData payload, decoded
    // Raw access for malformed-input tests.
    Status send_raw(const std::string& bytes);
    // Reads one backend message: type and payload. Type 'E' carries an error.
    Status read_backend_message(char& type, std::string& payload);
    static std::string error_text(const std::string& error_payload);
    void close();
    int fd() const { return fd_; }

private:
    Status read_exact(char* buf, std::size_t n);
    int fd_ = -1;
    std::string out_;
};

}  // namespace wp::sk
