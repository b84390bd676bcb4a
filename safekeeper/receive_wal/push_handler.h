// START_WAL_PUSH: the proposer's CopyBoth stream, driven through the core's
// AcceptorSession (the connection rules: greeting first, one streamer per
// timeline, batches; walproposer/acceptor_session.h) and Acceptor with the
// timeline's WalStorage. This file keeps the socket, the timeline lock, the
// batch size, SQLSTATEs and logs.
//
// Each core message (walproposer/messages.h) is the payload of one CopyData
// ('d') message. Group commit: after one AppendRequest, every further
// AppendRequest already received on the socket is written too (up to 16 MB
// per batch), then one flush (fdatasync) makes them durable, and only then is
// one AppendResponse per request sent, each reporting the durable flush LSN.
// Only the connection whose ProposerElected was accepted last streams;
// an older streamer gets an ErrorResponse at its next AppendRequest.
// Any other message taken into a batch (a VoteRequest, a WalReadRequest, ...)
// first completes the appends before it (flush, responses queued), so every
// reply goes out in request order and a WalReadRequest sees them durable.
// A WalReadRequest (sync proposer, protocol v3) is answered with a
// WalReadResponse from the acceptor's durable WAL. A ProposerElected refused
// because the proposer is below the fence ("fenced: ...") ends the
// connection with SQLSTATE 42501; other acceptor errors with 55000, or 58030
// after a storage failure (the timeline then stops).
//
// Timeline creation: START_WAL_PUSH on an unknown timeline creates it,
// unless PushContext::create_timeline is false (startup option
// create_timeline=false, used by the sync proposer): then the client gets
// ErrorResponse 42704 and nothing is created.
//
// Thread-safety: runs on the connection's own thread; takes the timeline's
// mutex per batch. Returns when the stream ends (CopyDone, Terminate, peer
// gone, or an error that was reported to the peer). `true` = the connection
// may continue in simple-query mode.
#pragma once

#include <cstdint>

#include "wire/pg_wire.h"
#include "timeline/timeline.h"

namespace wp::sk {

struct PushContext {
    TimelineRegistry* registry = nullptr;
    std::uint64_t conn_id = 0;
    Id128 tenant_id{};
    Id128 timeline_id{};
    bool create_timeline = true;  // false: an unknown timeline is an error
};

bool run_wal_push(PgConnection& conn, const PushContext& ctx);

}  // namespace wp::sk
