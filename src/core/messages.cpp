#include "walproposer/messages.h"

#include <algorithm>
#include <cstring>

#include "walproposer/byte_order.h"

namespace wp {

bool ProposerGreeting::operator==(const ProposerGreeting& o) const {
    return protocol_version == o.protocol_version && system_id == o.system_id &&
           pg_version == o.pg_version && wal_segment_size == o.wal_segment_size &&
           tenant_id == o.tenant_id && timeline_id == o.timeline_id &&
           pg_timeline == o.pg_timeline && proposer_id == o.proposer_id &&
           pg_timeline_history == o.pg_timeline_history && flags == o.flags;
}
bool AcceptorGreeting::operator==(const AcceptorGreeting& o) const {
    return node_id == o.node_id && term == o.term && last_log_term == o.last_log_term &&
           flush_lsn == o.flush_lsn && system_id == o.system_id &&
           wal_segment_size == o.wal_segment_size && pg_timeline == o.pg_timeline &&
           min_pg_timeline == o.min_pg_timeline && configuration == o.configuration;
}
bool VoteResponse::operator==(const VoteResponse& o) const {
    return term == o.term && vote_granted == o.vote_granted && flush_lsn == o.flush_lsn &&
           truncate_lsn == o.truncate_lsn && term_history == o.term_history &&
           tail_lsn == o.tail_lsn && tail == o.tail && configuration == o.configuration &&
           refusal == o.refusal;
}
bool ProposerElected::operator==(const ProposerElected& o) const {
    return term == o.term && start_streaming_lsn == o.start_streaming_lsn &&
           term_history == o.term_history && configuration == o.configuration;
}
bool AppendRequest::operator==(const AppendRequest& o) const {
    return term == o.term && begin_lsn == o.begin_lsn && end_lsn == o.end_lsn &&
           commit_lsn == o.commit_lsn && truncate_lsn == o.truncate_lsn &&
           generation == o.generation && wal == o.wal;
}
bool AppendResponse::operator==(const AppendResponse& o) const {
    return term == o.term && flush_lsn == o.flush_lsn && commit_lsn == o.commit_lsn &&
           hs_xmin == o.hs_xmin && hs_catalog_xmin == o.hs_catalog_xmin &&
           generation == o.generation;
}

namespace {

// The codec's composite fields over the shared little-endian writer.
using Writer = ByteWriter<std::vector<std::uint8_t>>;

void put_id(Writer& w, const Id128& v) {
    w.bytes(v.data(), v.size());
}

void put_history(Writer& w, const TermHistory& h) {
    w.le32(static_cast<std::uint32_t>(h.size()));
    for (const TermLsn& e : h) {
        w.le64(e.term);
        w.le64(e.lsn);
    }
}

// The codec's reader: the shared bounds-checked ByteReader, plus what the
// codec reports. After the first failure every read fails and returns zeros;
// the caller checks ok() / error() once at the end, which names the first
// field that was missing.
class Reader {
public:
  Reader(const std::uint8_t* p, std::size_t n) : r_(p, n) {}
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  std::size_t remaining() const { return ok() ? r_.remaining() : 0; }
  void fail(const std::string& why) {
      if (error_.empty()) error_ = why;
    }
    bool need(std::size_t k, const char* what) {
        if (!ok()) return false;
        if (r_.remaining() < k) {
            fail(std::string("truncated message: ") + what);
            return false;
        }
        return true;
    }
    std::uint8_t u8(const char* what) {
        std::uint8_t v = 0;
        if (need(1, what)) r_.u8(v);
        return v;
    }
    std::uint32_t le32(const char* what) {
        std::uint32_t v = 0;
        if (need(4, what)) r_.le32(v);
        return v;
    }
    std::uint64_t le64(const char* what) {
        std::uint64_t v = 0;
        if (need(8, what)) r_.le64(v);
        return v;
    }
    Id128 id(const char* what) {
        Id128 v{};
        if (need(16, what)) r_.bytes(v.data(), v.size());
        return v;
    }
    // The next k bytes, in place (caller has bounded k).
    const std::uint8_t* take(std::size_t k, const char* what) {
        if (!need(k, what)) return nullptr;
        return r_.take(k);
    }
    TermHistory history() {
        TermHistory h;
        const std::uint32_t count = le32("term history count");
        if (!ok()) return h;
        if (count > kMaxTermHistoryEntries) {
            fail("term history has " + std::to_string(count) + " entries, more than the limit " +
                 std::to_string(kMaxTermHistoryEntries));
            return h;
        }
        // Check the bytes are there before allocating.
        if (!need(static_cast<std::size_t>(count) * 16, "term history entries")) return h;
        h.reserve(count);
        for (std::uint32_t i = 0; i < count; ++i) {
            TermLsn e;
            e.term = le64("term");
            e.lsn = le64("lsn");
            h.push_back(e);
        }
        if (!is_well_formed(h)) fail("malformed term history (terms must increase, LSNs not decrease, no term 0)");
        return h;
    }
    Configuration configuration() {
        Configuration c;
        if (!ok()) return c;
        Result<Configuration> read = read_configuration(r_);
        if (!read) {
            fail(read.message());
            return c;
        }
        return std::move(*read);
    }
    std::string short_string(const char* what) {
        const std::uint32_t len = le32(what);
        if (ok() && len > kMaxRefusalBytes) fail(std::string(what) + " too long");
        std::string out;
        if (const std::uint8_t* p = take(ok() ? len : 0, what))
            out.assign(reinterpret_cast<const char*>(p), len);
        return out;
    }
    void finish() {
        if (ok() && r_.remaining() != 0)
            fail(std::to_string(r_.remaining()) + " trailing bytes after message");
    }

private:
  ByteReader r_;
  std::string error_;
};

template <typename T>
Result<Message> done(Reader& r, T&& message) {
    r.finish();
    if (!r.ok()) return Result<Message>::error(r.error());
    return Message(std::forward<T>(message));
}

}  // namespace

void encode_append_request_head(const AppendRequest& m, std::vector<std::uint8_t>& out) {
    const std::size_t wal_size = m.end_lsn > m.begin_lsn ? m.end_lsn - m.begin_lsn : 0;
    out.reserve(out.size() + 45 + std::max(wal_size, m.wal.size()));
    Writer w(out);
    w.u8(static_cast<std::uint8_t>(MessageTag::kAppendRequest));
    w.le64(m.term);
    w.le64(m.begin_lsn);
    w.le64(m.end_lsn);
    w.le64(m.commit_lsn);
    w.le64(m.truncate_lsn);
    w.le32(m.generation);
}

std::vector<std::uint8_t> encode(const Message& message) {
    std::vector<std::uint8_t> out;
    Writer w(out);
    if (auto* m = std::get_if<ProposerGreeting>(&message)) {
        out.reserve(96 + m->pg_timeline_history.size());
        w.u8(static_cast<std::uint8_t>(MessageTag::kProposerGreeting));
        w.le32(m->protocol_version);
        w.le64(m->system_id);
        w.le32(m->pg_version);
        w.le32(m->wal_segment_size);
        put_id(w, m->tenant_id);
        put_id(w, m->timeline_id);
        w.le32(m->pg_timeline);
        put_id(w, m->proposer_id);
        w.le32(static_cast<std::uint32_t>(m->pg_timeline_history.size()));
        w.bytes(reinterpret_cast<const std::uint8_t*>(m->pg_timeline_history.data()),
                m->pg_timeline_history.size());
        w.le32(m->flags);
    } else if (auto* m = std::get_if<AcceptorGreeting>(&message)) {
        w.u8(static_cast<std::uint8_t>(MessageTag::kAcceptorGreeting));
        w.le64(m->node_id);
        w.le64(m->term);
        w.le64(m->last_log_term);
        w.le64(m->flush_lsn);
        w.le64(m->system_id);
        w.le32(m->wal_segment_size);
        w.le32(m->pg_timeline);
        w.le32(m->min_pg_timeline);
        put_configuration(w, m->configuration);
    } else if (auto* m = std::get_if<VoteRequest>(&message)) {
        w.u8(static_cast<std::uint8_t>(MessageTag::kVoteRequest));
        w.le64(m->term);
        w.le32(m->min_pg_timeline);
        w.le32(m->configuration.generation);
        w.le64(m->configuration.created_term);
    } else if (auto* m = std::get_if<VoteResponse>(&message)) {
        w.u8(static_cast<std::uint8_t>(MessageTag::kVoteResponse));
        w.le64(m->term);
        w.u8(m->vote_granted ? 1 : 0);
        w.le64(m->flush_lsn);
        w.le64(m->truncate_lsn);
        put_history(w, m->term_history);
        w.le64(m->tail_lsn);
        w.le32(static_cast<std::uint32_t>(m->tail.size()));
        w.bytes(m->tail.data(), m->tail.size());
        put_configuration(w, m->configuration);
        const std::size_t len = std::min(m->refusal.size(), kMaxRefusalBytes);
        w.le32(static_cast<std::uint32_t>(len));
        w.bytes(m->refusal.data(), len);
    } else if (auto* m = std::get_if<ProposerElected>(&message)) {
        w.u8(static_cast<std::uint8_t>(MessageTag::kProposerElected));
        w.le64(m->term);
        w.le64(m->start_streaming_lsn);
        put_history(w, m->term_history);
        put_configuration(w, m->configuration);
    } else if (auto* m = std::get_if<AppendRequest>(&message)) {
        encode_append_request_head(*m, out);
        w.bytes(m->wal.data(), m->wal.size());
    } else if (auto* m = std::get_if<AppendResponse>(&message)) {
        w.u8(static_cast<std::uint8_t>(MessageTag::kAppendResponse));
        w.le64(m->term);
        w.le64(m->flush_lsn);
        w.le64(m->commit_lsn);
        w.le64(m->hs_xmin);
        w.le64(m->hs_catalog_xmin);
        w.le32(m->generation);
    } else if (auto* m = std::get_if<WalReadRequest>(&message)) {
        w.u8(static_cast<std::uint8_t>(MessageTag::kWalReadRequest));
        w.le64(m->term);
        w.le64(m->begin_lsn);
        w.le64(m->end_lsn);
    } else if (auto* m = std::get_if<WalReadResponse>(&message)) {
        out.reserve(21 + m->wal.size());
        w.u8(static_cast<std::uint8_t>(MessageTag::kWalReadResponse));
        w.le64(m->term);
        w.le64(m->begin_lsn);
        w.le32(static_cast<std::uint32_t>(m->wal.size()));
        w.bytes(m->wal.data(), m->wal.size());
    } else if (auto* m = std::get_if<ConfigurationUpdate>(&message)) {
        w.u8(static_cast<std::uint8_t>(MessageTag::kConfigurationUpdate));
        w.le64(m->term);
        put_configuration(w, m->configuration);
    }
    return out;
}

Result<Message> decode(const std::uint8_t* data, std::size_t size) {
    if (data == nullptr || size == 0) return Result<Message>::error("empty message");
    Reader r(data, size);
    const std::uint8_t tag = r.u8("tag");
    switch (static_cast<MessageTag>(tag)) {
        case MessageTag::kProposerGreeting: {
            ProposerGreeting m;
            m.protocol_version = r.le32("protocol version");
            m.system_id = r.le64("system id");
            m.pg_version = r.le32("pg version");
            m.wal_segment_size = r.le32("wal segment size");
            m.tenant_id = r.id("tenant id");
            m.timeline_id = r.id("timeline id");
            m.pg_timeline = r.le32("pg timeline");
            m.proposer_id = r.id("proposer id");
            const std::uint32_t len = r.le32("timeline history length");
            if (r.ok() && len > kMaxTimelineHistoryBytes)
                r.fail("timeline history of " + std::to_string(len) + " bytes exceeds the limit");
            if (const std::uint8_t* p = r.take(len, "timeline history"))
                m.pg_timeline_history.assign(reinterpret_cast<const char*>(p), len);
            m.flags = r.le32("flags");
            if (r.ok() && (m.flags & ~kGreetingFlagSync) != 0)
                r.fail("unknown greeting flags " + std::to_string(m.flags));
            return done(r, std::move(m));
        }
        case MessageTag::kAcceptorGreeting: {
            AcceptorGreeting m;
            m.node_id = r.le64("node id");
            m.term = r.le64("term");
            m.last_log_term = r.le64("last log term");
            m.flush_lsn = r.le64("flush lsn");
            m.system_id = r.le64("system id");
            m.wal_segment_size = r.le32("wal segment size");
            m.pg_timeline = r.le32("pg timeline");
            m.min_pg_timeline = r.le32("min pg timeline");
            m.configuration = r.configuration();
            return done(r, std::move(m));
        }
        case MessageTag::kVoteRequest: {
            VoteRequest m;
            m.term = r.le64("term");
            m.min_pg_timeline = r.le32("min pg timeline");
            m.configuration.generation = r.le32("configuration generation");
            m.configuration.created_term = r.le64("configuration term");
            return done(r, std::move(m));
        }
        case MessageTag::kVoteResponse: {
            VoteResponse m;
            m.term = r.le64("term");
            const std::uint8_t granted = r.u8("vote granted");
            if (r.ok() && granted > 1) r.fail("vote granted flag must be 0 or 1");
            m.vote_granted = granted == 1;
            m.flush_lsn = r.le64("flush lsn");
            m.truncate_lsn = r.le64("truncate lsn");
            m.term_history = r.history();
            m.tail_lsn = r.le64("tail lsn");
            const std::uint32_t tail_len = r.le32("tail length");
            if (r.ok() && tail_len > kVoteTailBytes)
                r.fail("WAL tail of " + std::to_string(tail_len) + " bytes exceeds the limit " +
                       std::to_string(kVoteTailBytes));
            if (const std::uint8_t* tail = r.take(r.ok() ? tail_len : 0, "WAL tail"))
                m.tail.assign(tail, tail + tail_len);
            if (r.ok() && m.tail_lsn + m.tail.size() != m.flush_lsn)
                r.fail("WAL tail must end at the flush lsn");
            m.configuration = r.configuration();
            m.refusal = r.short_string("refusal");
            return done(r, std::move(m));
        }
        case MessageTag::kProposerElected: {
            ProposerElected m;
            m.term = r.le64("term");
            m.start_streaming_lsn = r.le64("start streaming lsn");
            m.term_history = r.history();
            m.configuration = r.configuration();
            return done(r, std::move(m));
        }
        case MessageTag::kAppendRequest: {
            AppendRequest m;
            m.term = r.le64("term");
            m.begin_lsn = r.le64("begin lsn");
            m.end_lsn = r.le64("end lsn");
            m.commit_lsn = r.le64("commit lsn");
            m.truncate_lsn = r.le64("truncate lsn");
            m.generation = r.le32("configuration generation");
            if (!r.ok()) return Result<Message>::error(r.error());
            if (m.end_lsn < m.begin_lsn) return Result<Message>::error("append end lsn before begin lsn");
            const std::uint64_t len = m.end_lsn - m.begin_lsn;
            if (len > kMaxWalPayloadBytes)
                return Result<Message>::error("append of " + std::to_string(len) +
                                              " bytes exceeds the limit");
            if (len != r.remaining())
                return Result<Message>::error("append carries " + std::to_string(r.remaining()) +
                                              " WAL bytes but end - begin is " + std::to_string(len));
            if (const std::uint8_t* p = r.take(static_cast<std::size_t>(len), "wal"))
                m.wal.assign(p, p + len);
            return done(r, std::move(m));
        }
        case MessageTag::kAppendResponse: {
            AppendResponse m;
            m.term = r.le64("term");
            m.flush_lsn = r.le64("flush lsn");
            m.commit_lsn = r.le64("commit lsn");
            m.hs_xmin = r.le64("hs xmin");
            m.hs_catalog_xmin = r.le64("hs catalog xmin");
            m.generation = r.le32("configuration generation");
            return done(r, std::move(m));
        }
        case MessageTag::kWalReadRequest: {
            WalReadRequest m;
            m.term = r.le64("term");
            m.begin_lsn = r.le64("begin lsn");
            m.end_lsn = r.le64("end lsn");
            if (r.ok() && m.end_lsn < m.begin_lsn) r.fail("read end lsn before begin lsn");
            if (r.ok() && m.end_lsn - m.begin_lsn > kMaxWalPayloadBytes)
                r.fail("read of " + std::to_string(m.end_lsn - m.begin_lsn) +
                       " bytes exceeds the limit");
            return done(r, std::move(m));
        }
        case MessageTag::kWalReadResponse: {
            WalReadResponse m;
            m.term = r.le64("term");
            m.begin_lsn = r.le64("begin lsn");
            const std::uint32_t len = r.le32("wal length");
            if (r.ok() && len > kMaxWalPayloadBytes)
                r.fail("read response of " + std::to_string(len) + " bytes exceeds the limit");
            if (const std::uint8_t* p = r.take(r.ok() ? len : 0, "wal")) m.wal.assign(p, p + len);
            return done(r, std::move(m));
        }
        case MessageTag::kConfigurationUpdate: {
            ConfigurationUpdate m;
            m.term = r.le64("term");
            m.configuration = r.configuration();
            if (r.ok() && m.configuration.generation == 0)
                r.fail("ConfigurationUpdate must carry a configuration (generation > 0)");
            return done(r, std::move(m));
        }
    }
    return Result<Message>::error("unknown message tag " + std::to_string(tag));
}

const char* message_name(const Message& message) {
    static const char* const kNames[] = {"ProposerGreeting", "AcceptorGreeting", "VoteRequest",
                                         "VoteResponse",     "ProposerElected",  "AppendRequest",
                                         "AppendResponse",   "WalReadRequest",   "WalReadResponse",
                                         "ConfigurationUpdate"};
    return kNames[message.index()];
}

std::string describe(const Message& message) {
    std::string s = message_name(message);
    if (auto* m = std::get_if<ProposerGreeting>(&message)) {
        s += " v" + std::to_string(m->protocol_version) + " sysid=" + std::to_string(m->system_id) +
             " pg_tli=" + std::to_string(m->pg_timeline) + (m->is_sync() ? " sync" : "");
    } else if (auto* m = std::get_if<AcceptorGreeting>(&message)) {
        s += " node=" + std::to_string(m->node_id) + " term=" + std::to_string(m->term) +
             " llt=" + std::to_string(m->last_log_term) + " flush=" + format_lsn(m->flush_lsn) +
             " pg_tli=" + std::to_string(m->pg_timeline) +
             " fence=" + std::to_string(m->min_pg_timeline) +
             " config=" + format_configuration(m->configuration);
    } else if (auto* m = std::get_if<VoteRequest>(&message)) {
        s += " term=" + std::to_string(m->term);
        if (m->min_pg_timeline) s += " fence=" + std::to_string(m->min_pg_timeline);
        if (m->configuration.generation) s += " gen=" + std::to_string(m->configuration.generation);
    } else if (auto* m = std::get_if<VoteResponse>(&message)) {
        s += " term=" + std::to_string(m->term) + (m->vote_granted ? " granted" : " refused") +
             " flush=" + format_lsn(m->flush_lsn) + " history=" + format_history(m->term_history) +
             " tail=" + std::to_string(m->tail.size()) + "B";
        if (m->configuration.generation) s += " config=" + format_configuration(m->configuration);
        if (!m->refusal.empty()) s += " refusal=\"" + m->refusal + "\"";
    } else if (auto* m = std::get_if<ProposerElected>(&message)) {
        s += " term=" + std::to_string(m->term) + " start=" + format_lsn(m->start_streaming_lsn) +
             " history=" + format_history(m->term_history);
        if (m->configuration.generation) s += " config=" + format_configuration(m->configuration);
    } else if (auto* m = std::get_if<AppendRequest>(&message)) {
        s += " term=" + std::to_string(m->term) + " [" + format_lsn(m->begin_lsn) + ", " +
             format_lsn(m->end_lsn) + ") commit=" + format_lsn(m->commit_lsn);
    } else if (auto* m = std::get_if<AppendResponse>(&message)) {
        s += " term=" + std::to_string(m->term) + " flush=" + format_lsn(m->flush_lsn) +
             " commit=" + format_lsn(m->commit_lsn);
    } else if (auto* m = std::get_if<WalReadRequest>(&message)) {
        s += " term=" + std::to_string(m->term) + " [" + format_lsn(m->begin_lsn) + ", " +
             format_lsn(m->end_lsn) + ")";
    } else if (auto* m = std::get_if<WalReadResponse>(&message)) {
        s += " term=" + std::to_string(m->term) + " at " + format_lsn(m->begin_lsn) + " " +
             std::to_string(m->wal.size()) + "B";
    } else if (auto* m = std::get_if<ConfigurationUpdate>(&message)) {
        s += " term=" + std::to_string(m->term) + " config=" + format_configuration(m->configuration);
    }
    return s;
}

}  // namespace wp
