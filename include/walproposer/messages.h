// Wire messages of the proposer <-> acceptor protocol and their codec.
//
// Each message is the payload of one PostgreSQL CopyData ('d') frame inside the
// CopyBoth stream opened by START_WAL_PUSH; this codec only handles payload
// bytes. The exact byte layout is documented in docs/protocol.md. All integers
// are little-endian; every message starts with a one-byte tag; the protocol
// version travels in ProposerGreeting (kProtocolVersion) and an acceptor
// rejects versions it does not speak.
//
// Contract: encode_* never fails. decode() never throws, never reads outside
// the given buffer, and allocates at most what the (already length-checked)
// input holds, bounded by kMaxWalPayloadBytes / kMaxTermHistoryEntries /
// kMaxTimelineHistoryBytes. Any truncated, oversized, trailing or otherwise
// malformed input yields an error value. Pure functions; thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "walproposer/configuration.h"
#include "walproposer/lsn.h"
#include "walproposer/result.h"
#include "walproposer/term_history.h"
#include "walproposer/timeline_key.h"

namespace wp {

// Version 2: VoteResponse carries the acceptor's WAL tail (content check of a
// primary's claim that the quorum's WAL is its own).
// Version 3: failover. ProposerGreeting has flags (sync proposer),
// AcceptorGreeting reports the identity and the fence, VoteRequest carries a
// fence, and WalReadRequest/WalReadResponse let a sync proposer copy the
// donor's WAL.
// Version 4: membership. AcceptorGreeting, VoteResponse and ProposerElected
// carry a Configuration, VoteRequest its key, AppendRequest and
// AppendResponse its generation, and ConfigurationUpdate installs a new one.
constexpr std::uint32_t kProtocolVersion = 4;
// ProposerGreeting::flags: a sync proposer (failover tool). It has no WAL and
// no PostgreSQL identity of its own (system id 0 allowed); it never changes
// the identity or PostgreSQL timeline an acceptor holds.
constexpr std::uint32_t kGreetingFlagSync = 1;
constexpr std::size_t kMaxWalPayloadBytes = 16u * 1024 * 1024;        // per AppendRequest
// Bytes of WAL below its flush LSN an acceptor returns in a VoteResponse.
constexpr std::size_t kVoteTailBytes = 8192;
constexpr std::size_t kMaxTimelineHistoryBytes = 1u * 1024 * 1024;    // PG .history file
// Longest refusal reason in a VoteResponse.
constexpr std::size_t kMaxRefusalBytes = 1024;

// One-byte tags (ASCII, so a hex dump is readable).
enum class MessageTag : std::uint8_t {
    kProposerGreeting = 'G',
    kAcceptorGreeting = 'g',
    kVoteRequest = 'V',
    kVoteResponse = 'v',
    kProposerElected = 'E',
    kAppendRequest = 'A',
    kAppendResponse = 'a',
    kWalReadRequest = 'R',
    kWalReadResponse = 'r',
    kConfigurationUpdate = 'C',
};

// P -> A, first message on a connection.
struct ProposerGreeting {
    std::uint32_t protocol_version = kProtocolVersion;
    std::uint64_t system_id = 0;        // PostgreSQL system identifier
    std::uint32_t pg_version = 0;       // e.g. 150004
    std::uint32_t wal_segment_size = 0; // bytes
    Id128 tenant_id{};
    Id128 timeline_id{};
    std::uint32_t pg_timeline = 0;      // PostgreSQL TimeLineID
    Id128 proposer_id{};
    std::string pg_timeline_history;    // content of the PG .history file; may be empty
    std::uint32_t flags = 0;            // kGreetingFlag* bits; others must be 0
    bool is_sync() const { return (flags & kGreetingFlagSync) != 0; }
    bool operator==(const ProposerGreeting& o) const;
};

// A -> P, answer to ProposerGreeting.
struct AcceptorGreeting {
    NodeId node_id = 0;
    Term term = 0;           // highest term promised
    Term last_log_term = 0;  // last term of the history up to flush_lsn
    Lsn flush_lsn = kInvalidLsn;
    // The identity the acceptor holds (system_id 0 = none yet): a sync
    // proposer learns the timeline's identity from these.
    std::uint64_t system_id = 0;
    std::uint32_t wal_segment_size = 0;
    std::uint32_t pg_timeline = 0;
    // The fence: a proposer on a lower PostgreSQL timeline can never be
    // elected here again (0 = no fence). Set by a sync proposer's vote.
    std::uint32_t min_pg_timeline = 0;
    // The configuration the acceptor holds (generation 0: none): a proposer
    // with an older one adopts it before it campaigns.
    Configuration configuration;
    bool operator==(const AcceptorGreeting& o) const;
};

// P -> A: "vote for me in `term`".
struct VoteRequest {
    VoteRequest() = default;
    VoteRequest(Term t, std::uint32_t fence = 0, ConfigurationKey key = {})
        : term(t), min_pg_timeline(fence), configuration(key) {}
    Term term = 0;
    // Fence to persist together with the granted vote (0 = none); only a sync
    // proposer sets it. The acceptor keeps the highest fence it was given.
    std::uint32_t min_pg_timeline = 0;
    // Key of the proposer's configuration: an acceptor holding a newer one
    // refuses the vote (and its VoteResponse carries that configuration).
    ConfigurationKey configuration;
    bool operator==(const VoteRequest& o) const {
        return term == o.term && min_pg_timeline == o.min_pg_timeline &&
               configuration == o.configuration;
    }
};

// A -> P. Sent after the new term is durable. Carries the acceptor's state even
// when the vote is refused (an elected proposer uses it to place a late joiner).
struct VoteResponse {
    Term term = 0;  // the acceptor's term after handling the request
    bool vote_granted = false;
    Lsn flush_lsn = kInvalidLsn;
    Lsn truncate_lsn = kInvalidLsn;
    TermHistory term_history;  // up to flush_lsn
    // The last bytes of durable WAL: [tail_lsn, flush_lsn), at most
    // kVoteTailBytes, fewer only where the acceptor's WAL starts. The elected
    // proposer compares the donor's tail with its own WAL at the same LSNs.
    Lsn tail_lsn = kInvalidLsn;
    std::vector<std::uint8_t> tail;
    // The configuration the acceptor holds after the request.
    Configuration configuration;
    // Why the vote was refused, when not for a higher term ("" otherwise).
    std::string refusal;
    bool operator==(const VoteResponse& o) const;
};

// P -> A: "I was elected in `term`; my history is this; stream starts here".
struct ProposerElected {
    Term term = 0;
    Lsn start_streaming_lsn = kInvalidLsn;  // highest common point for this acceptor
    TermHistory term_history;               // the proposer's full history
    // The proposer's configuration: the acceptor installs it (it must not be
    // older than the one the acceptor holds).
    Configuration configuration;
    bool operator==(const ProposerElected& o) const;
};

// P -> A: WAL bytes [begin_lsn, end_lsn). begin == end is a heartbeat that
// only carries commit/truncate LSNs.
struct AppendRequest {
    Term term = 0;
    Lsn begin_lsn = kInvalidLsn;
    Lsn end_lsn = kInvalidLsn;
    Lsn commit_lsn = kInvalidLsn;
    Lsn truncate_lsn = kInvalidLsn;
    Generation generation = 0;      // the proposer's configuration generation
    std::vector<std::uint8_t> wal;  // exactly end_lsn - begin_lsn bytes
    bool operator==(const AppendRequest& o) const;
};

// A -> P: what is durable. Also the answer to ProposerElected.
struct AppendResponse {
    Term term = 0;
    Lsn flush_lsn = kInvalidLsn;
    Lsn commit_lsn = kInvalidLsn;
    // Hot-standby feedback from the acceptor's consumers; 0 = none.
    std::uint64_t hs_xmin = 0;          // full (epoch-qualified) transaction id
    std::uint64_t hs_catalog_xmin = 0;  // full transaction id
    Generation generation = 0;          // configuration generation the acceptor holds
    bool operator==(const AppendResponse& o) const;
};

// P -> A: "send me your WAL [begin_lsn, end_lsn)". Only the elected proposer
// of the acceptor's accepted term may ask (the bytes are then that term's
// history); used by a sync proposer, which has no WAL of its own.
struct WalReadRequest {
    Term term = 0;
    Lsn begin_lsn = kInvalidLsn;
    Lsn end_lsn = kInvalidLsn;  // end - begin <= kMaxWalPayloadBytes
    bool operator==(const WalReadRequest& o) const {
        return term == o.term && begin_lsn == o.begin_lsn && end_lsn == o.end_lsn;
    }
};

// A -> P: the bytes asked for. A term different from the request's means the
// acceptor has moved on (a higher term): no bytes, the proposer steps down.
struct WalReadResponse {
    Term term = 0;
    Lsn begin_lsn = kInvalidLsn;
    std::vector<std::uint8_t> wal;
    bool operator==(const WalReadResponse& o) const {
        return term == o.term && begin_lsn == o.begin_lsn && wal == o.wal;
    }
};

// P -> A: "persist this configuration" (a membership change step), sent by
// the proposer elected in `term` (the acceptor's accepted term). Answered
// with an AppendResponse carrying the new generation once it is durable.
struct ConfigurationUpdate {
    Term term = 0;
    Configuration configuration;
    bool operator==(const ConfigurationUpdate& o) const {
        return term == o.term && configuration == o.configuration;
    }
};

using Message = std::variant<ProposerGreeting, AcceptorGreeting, VoteRequest, VoteResponse,
                             ProposerElected, AppendRequest, AppendResponse, WalReadRequest,
                             WalReadResponse, ConfigurationUpdate>;

std::vector<std::uint8_t> encode(const Message& message);

// Appends to `out` the encoding of `m` without its WAL (m.wal is not read):
// the caller appends the end_lsn - begin_lsn WAL bytes after it, so the WAL
// is copied once, straight from where it is read. `out` is reserved for
// them. The result is the same as encode(m) with the WAL in m.wal.
void encode_append_request_head(const AppendRequest& m, std::vector<std::uint8_t>& out);

// Decodes exactly one message occupying all of [data, data + size).
Result<Message> decode(const std::uint8_t* data, std::size_t size);
inline Result<Message> decode(const std::vector<std::uint8_t>& bytes) {
    return decode(bytes.data(), bytes.size());
}

// "ProposerGreeting", "AppendRequest", ... for logs.
const char* message_name(const Message& message);
// One-line human-readable summary for logs and simulator traces.
std::string describe(const Message& message);

}  // namespace wp
