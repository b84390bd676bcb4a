// The acceptor's per-connection rules: an IO-free object shared by the
// safekeeper daemon (safekeeper/push_handler.cpp) and the simulator
// (test/sim/).
//
// One AcceptorSession per proposer connection. The driver decodes each
// message of that connection and passes it to handle(); the session applies
// the connection rules, calls the Acceptor and returns what to send and
// whether the connection must end:
//
//  * the greeting comes first: any other message before a successful
//    ProposerGreeting is a protocol error; a ProposerElected is checked
//    against the greeting of its own connection;
//  * one streaming proposer per timeline: the connection whose
//    ProposerElected the acceptor accepted last owns the StreamingSlot of the
//    timeline; an AppendRequest of the acceptor's term (or later) from any
//    other connection is refused (an error that ends that connection). A
//    lower term still reaches the Acceptor, whose reply tells the old
//    proposer about the higher term;
//  * batch (group commit): an AppendRequest is only written; finish_batch()
//    flushes once and answers every AppendRequest of the batch, each with the
//    durable flush LSN. Any other message first finishes the batch (its
//    AppendResponses come first in the step), so replies keep request order
//    and a WalReadRequest sees the appends durable.
//
// Errors are values (SessionError); after one, the driver sends the step's
// replies, reports the error and closes the connection (and calls close()).
// kStorage means the Acceptor has stopped (a failed write or fsync): the
// driver stops serving the timeline.
//
// Ownership / lifetime: the session does not own the Acceptor or the
// StreamingSlot; both must outlive it and must be the same for every session
// of one timeline. Thread-safety: none. Every call on any session of a
// timeline, and every use of its Acceptor and StreamingSlot, happens under
// one lock (the daemon's timeline mutex) or on one thread (the simulator).
// No clock, socket or file inside.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "walproposer/acceptor.h"
#include "walproposer/lsn.h"
#include "walproposer/messages.h"

namespace wp {

// Which connection streams WAL on one timeline (acceptor). Shared by every
// AcceptorSession of that acceptor and guarded by the acceptor's lock. A
// session id is non-zero and unique among the sessions of one timeline; 0
// means "nobody streams". Value type.
class StreamingSlot {
  public:
    std::uint64_t holder() const { return holder_; }
    Term term() const { return term_; }  // the holder's elected term (0 when free)
    bool held_by(std::uint64_t session_id) const { return holder_ != 0 && holder_ == session_id; }
    // Makes `session_id` (elected in `term`) the streamer. Returns the
    // previous holder when it was another session (its stream is superseded),
    // else 0.
    std::uint64_t claim(std::uint64_t session_id, Term term);
    // Frees the slot if `session_id` holds it; otherwise changes nothing.
    void release(std::uint64_t session_id);

  private:
    std::uint64_t holder_ = 0;
    Term term_ = 0;
};

enum class SessionErrorKind {
    kProtocol,       // malformed order or unexpected message (SQLSTATE 08P01)
    kWrongTimeline,  // greeting names another tenant/timeline than expected (22023)
    kRefused,        // the acceptor or the one-streamer rule refused it (55000)
    kFenced,         // ProposerElected below the fence: refused for good (42501)
    kStorage,        // storage failure: the Acceptor has stopped (58030)
};
const char* session_error_kind_name(SessionErrorKind kind);

struct SessionError {
    SessionErrorKind kind = SessionErrorKind::kProtocol;
    std::string message;  // suitable for a PostgreSQL ErrorResponse
};

// The outcome of one handle() or finish_batch() call. Send `batch` first,
// then `reply`; then, if `error` is set, report it and close the connection.
struct SessionStep {
    // Answers to the AppendRequests of the batch this call completed (one per
    // request, all reporting the same durable flush LSN).
    std::vector<AppendResponse> batch;
    // The answer to the message itself (absent for an AppendRequest that was
    // written: finish_batch() answers it).
    std::optional<Message> reply;
    std::optional<SessionError> error;
    // An AppendRequest was written into the current batch.
    bool appended = false;
    // A ProposerElected of the acceptor's term was accepted: this session now
    // holds the StreamingSlot. `superseded` is the session that streamed
    // before (0 if none or this one): its stream is over.
    bool elected = false;
    std::uint64_t superseded = 0;
};

struct AcceptorSessionConfig {
    // When set, a ProposerGreeting must name this tenant/timeline (the
    // daemon: the connection's startup options).
    bool check_timeline = false;
    Id128 tenant_id{};
    Id128 timeline_id{};
    // TEST ONLY -- the simulator's negative control (--break one-streamer):
    // any greeted connection may append in the acceptor's term.
    bool unsafe_test_only_any_streamer = false;
};

class AcceptorSession {
  public:
    // `id`: non-zero, unique among the sessions of this timeline. `acceptor`
    // and `slot` must outlive the session (see the file comment).
    AcceptorSession(std::uint64_t id, AcceptorSessionConfig config, Acceptor& acceptor,
                    StreamingSlot& slot);
    // One session per connection: not copyable (a copy would answer the same
    // batch twice).
    AcceptorSession(const AcceptorSession&) = delete;
    AcceptorSession& operator=(const AcceptorSession&) = delete;

    // One decoded message of this connection.
    SessionStep handle(const Message& message);
    // Ends the current batch: one Acceptor::flush(), then one AppendResponse
    // per AppendRequest written since the last batch ended. Nothing pending:
    // no flush, an empty step. A failed flush is a kStorage error and the
    // pending requests stay unanswered. The daemon calls this when no further
    // message is already waiting on the socket; the simulator at a scheduled
    // later step (the delay of group commit).
    SessionStep finish_batch();
    // The connection is gone: frees the StreamingSlot if this session holds
    // it. Unanswered appends stay written (flushed by a later flush of the
    // acceptor). Call once, under the lock.
    void close();

    std::uint64_t id() const { return id_; }
    bool greeted() const { return greeted_; }
    const ProposerGreeting& greeting() const { return greeting_; }  // valid when greeted()
    std::size_t pending_appends() const { return pending_appends_; }
    bool streaming() const { return slot_.held_by(id_); }

  private:
    SessionStep fail(SessionStep step, SessionErrorKind kind, std::string message) const;
    // An error returned by the Acceptor: kStorage when it has stopped.
    SessionStep fail_from_acceptor(SessionStep step, const std::string& message) const;

    std::uint64_t id_;
    AcceptorSessionConfig config_;
    Acceptor& acceptor_;
    StreamingSlot& slot_;
    bool greeted_ = false;
    ProposerGreeting greeting_;
    std::size_t pending_appends_ = 0;
};

}  // namespace wp
