#include "receive_wal/push_handler.h"

#include <spdlog/spdlog.h>

#include <optional>
#include <variant>

#include "storage/durable_file.h"
#include "walproposer/acceptor_session.h"
#include "walproposer/messages.h"

namespace wp::sk {
namespace {

constexpr std::size_t kMaxBatchBytes = 16u << 20;

AcceptorSessionConfig session_config(const PushContext& ctx) {
    AcceptorSessionConfig config;
    config.check_timeline = true;
    config.tenant_id = ctx.tenant_id;
    config.timeline_id = ctx.timeline_id;
    return config;
}

// The socket side of one proposer connection: reads batches, drives the
// core's AcceptorSession under the timeline lock, sends its replies and logs.
class PushSession {
  public:
    // Takes only the addresses of the timeline's Acceptor and StreamingSlot
    // (no lock needed); the session uses them under tl->mutex().
    PushSession(PgConnection& conn, const PushContext& ctx, std::shared_ptr<Timeline> tl)
        : conn_(conn),
          tl_(std::move(tl)),
          session_(ctx.conn_id, session_config(ctx), *tl_->acceptor(), tl_->streaming_locked()) {}

    bool run();

  private:
    // Handles one CopyData payload under the timeline lock. Returns false
    // after an error (error_ set).
    bool handle_locked(const std::string& payload);
    // Ends the session's batch: flush, responses queued. Lock held.
    void finish_batch_locked();
    void queue(const Message& m) { out_.push_back(encode(m)); }
    void fail(const char* sqlstate, std::string message) {
        if (!error_) error_ = std::make_pair(std::string(sqlstate), std::move(message));
    }
    // A session error: after a storage failure the timeline stops (the
    // acceptor refuses everything from then on); anything else is this
    // proposer's problem and only ends its connection.
    void fail_session_locked(const SessionError& e);

    PgConnection& conn_;
    std::shared_ptr<Timeline> tl_;
    AcceptorSession session_;  // guarded by tl_->mutex()
    std::vector<std::vector<std::uint8_t>> out_;
    std::optional<std::pair<std::string, std::string>> error_;
};

void PushSession::fail_session_locked(const SessionError& e) {
    switch (e.kind) {
        case SessionErrorKind::kProtocol:
            fail(sqlstate::kProtocolViolation, e.message);
            return;
        case SessionErrorKind::kWrongTimeline:
            fail(sqlstate::kInvalidParameterValue, e.message);
            return;
        case SessionErrorKind::kRefused:
            fail(sqlstate::kObjectNotInPrerequisiteState, e.message);
            return;
        case SessionErrorKind::kFenced:
            // Not a protocol error: this proposer (an old primary) lost its
            // place for good; a distinct SQLSTATE tells it so.
            fail(sqlstate::kInsufficientPrivilege, e.message);
            return;
        case SessionErrorKind::kStorage: {
            const Timeline::StorageFailure what = tl_->storage_failed_locked(e.message);
            fail(what == Timeline::StorageFailure::kOutOfResources ? sqlstate::kInsufficientResources
                 : tl_->snapshot().disk_full                        ? sqlstate::kDiskFull
                                                                    : sqlstate::kIoError,
                 e.message);
            return;
        }
    }
}

bool PushSession::run() {
    const std::string& name = tl_->name();
    conn_.send_copy_both_response();
    if (!conn_.flush()) return false;
    std::optional<FrontendMessage> next;
    bool ok = true;
    for (;;) {
        FrontendMessage msg;
        if (next) {
            msg = std::move(*next);
            next.reset();
        } else {
            auto m = conn_.read_message();
            if (!m) {
                if (m.status().kind() == StatusKind::kInvalidInput) {
                    conn_.send_error(sqlstate::kProtocolViolation, m.status().message());
                    (void)conn_.flush();
                }
                spdlog::info("timeline {}: proposer {} disconnected: {}", name, conn_.peer(), m.status().message());
                ok = false;
                break;
            }
            msg = std::move(*m);
        }
        if (msg.type == 'c') {  // CopyDone: end of stream, back to command mode
            conn_.send_copy_done();
            conn_.send_command_complete("START_WAL_PUSH");
            spdlog::info("timeline {}: proposer {} ended the stream", name, conn_.peer());
            break;
        }
        if (msg.type == 'X') {
            ok = false;
            break;
        }
        if (msg.type != 'd') {
            conn_.send_error(sqlstate::kProtocolViolation,
                             std::string("unexpected message type '") + msg.type + "' in CopyBoth stream");
            (void)conn_.flush();
            ok = false;
            break;
        }
        {
            std::lock_guard<std::mutex> lock(tl_->mutex());
            std::size_t batch_bytes = msg.payload.size();
            bool good = handle_locked(msg.payload);
            // Group commit: take every AppendRequest that has already arrived.
            while (good && session_.pending_appends() > 0 && batch_bytes < kMaxBatchBytes &&
                   conn_.message_ready()) {
                auto m = conn_.read_message();
                if (!m) break;  // reported at the next read
                if (m->type != 'd') {
                    next = std::move(*m);
                    break;
                }
                batch_bytes += m->payload.size();
                good = handle_locked(m->payload);
            }
            finish_batch_locked();
            tl_->publish_locked();
        }
        for (const auto& bytes : out_) conn_.send_copy_data(bytes.data(), bytes.size());
        out_.clear();
        if (error_) {
            // A full disk is logged once by the timeline (not once per retry).
            spdlog::log(error_->first == sqlstate::kDiskFull ? spdlog::level::debug
                                                              : spdlog::level::warn,
                        "timeline {}: proposer {}: {}", name, conn_.peer(), error_->second);
            tl_->set_last_error(error_->second);
            conn_.send_error(error_->first, error_->second);
            (void)conn_.flush();
            ok = false;
            break;
        }
        if (!conn_.flush()) {
            ok = false;
            break;
        }
    }
    std::lock_guard<std::mutex> lock(tl_->mutex());
    session_.close();
    tl_->streaming_released_locked();
    tl_->maybe_persist_horizons_locked(false);
    tl_->publish_locked();
    return ok;
}

bool PushSession::handle_locked(const std::string& payload) {
    const std::string& name = tl_->name();
    if (tl_->state() != TimelineState::kActive) {
        fail(sqlstate::kObjectNotInPrerequisiteState,
             std::string("timeline is ") + timeline_state_name(tl_->state()));
        return false;
    }
    Acceptor& acceptor = *tl_->acceptor();
    auto decoded = decode(reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size());
    if (!decoded) {
        fail(sqlstate::kProtocolViolation, "malformed proposer message: " + decoded.message());
        return false;
    }
    const Message& message = *decoded;
    const std::uint32_t fence_before = acceptor.state().min_pg_timeline;
    const Lsn flush_before = acceptor.flush_lsn();
    SessionStep step = session_.handle(message);
    for (const AppendResponse& r : step.batch) queue(r);
    if (!step.batch.empty()) tl_->maybe_persist_horizons_locked(false);
    if (step.error) {
        const auto* e = std::get_if<ProposerElected>(&message);
        if (e && step.error->kind == SessionErrorKind::kFenced)
            spdlog::warn(
                "timeline {}: refused the election of fenced proposer {} in term {} "
                "(PostgreSQL timeline {} is below the fence {})",
                name, conn_.peer(), e->term, session_.greeting().pg_timeline,
                acceptor.state().min_pg_timeline);
        fail_session_locked(*step.error);
        return false;
    }
    const ProposerGreeting& greeting = session_.greeting();
    if (const auto* g = std::get_if<ProposerGreeting>(&message)) {
        const auto& reply = std::get<AcceptorGreeting>(*step.reply);
        if (g->is_sync()) {
            spdlog::info(
                "timeline {}: sync proposer {} connected (our term {}, flush {}, PG "
                "timeline {}, fence {})",
                name, conn_.peer(), reply.term, format_lsn(reply.flush_lsn), reply.pg_timeline,
                reply.min_pg_timeline);
        } else {
            spdlog::info(
                "timeline {}: proposer {} connected (system id {}, PG timeline {}, our term {}, "
                "flush {})",
                name, conn_.peer(), g->system_id, g->pg_timeline, reply.term,
                format_lsn(reply.flush_lsn));
            if (g->pg_timeline < reply.min_pg_timeline)
                spdlog::warn(
                    "timeline {}: proposer {} is on PostgreSQL timeline {}, below the "
                    "fence {}: it can never be elected here",
                    name, conn_.peer(), g->pg_timeline, reply.min_pg_timeline);
        }
    } else if (const auto* v = std::get_if<VoteRequest>(&message)) {
        const auto& reply = std::get<VoteResponse>(*step.reply);
        spdlog::info("timeline {}: vote for term {} {} (term now {}, flush {})", name, v->term,
                     reply.vote_granted ? "granted" : "refused", reply.term,
                     format_lsn(reply.flush_lsn));
        if (acceptor.state().min_pg_timeline > fence_before)
            spdlog::info(
                "timeline {}: fence raised to PostgreSQL timeline {} (was {}) by the vote "
                "of {} in term {}: a proposer on a lower PostgreSQL timeline can never be "
                "elected here again",
                name, acceptor.state().min_pg_timeline, fence_before, conn_.peer(), v->term);
    } else if (const auto* e = std::get_if<ProposerElected>(&message)) {
        const auto& reply = std::get<AppendResponse>(*step.reply);
        if (step.elected) {
            // Elected: only now may its PostgreSQL timeline history replace
            // ours (a proposer that is never elected changes nothing). A
            // sync proposer has no history of its own and changes nothing.
            if (!greeting.is_sync() &&
                acceptor.state().identity.pg_timeline == greeting.pg_timeline) {
                Status s = tl_->storage()->set_pg_timeline_history(greeting.pg_timeline_history);
                if (!s) {
                    tl_->storage_failed_locked("cannot store the PostgreSQL timeline history: " +
                                               s.message());
                    fail(tl_->snapshot().disk_full ? sqlstate::kDiskFull : sqlstate::kIoError,
                         s.message());
                    return false;
                }
            }
            tl_->streaming_claimed_locked(
                &conn_, [conn = &conn_] { conn->shutdown(); }, conn_.peer());
            if (reply.flush_lsn < flush_before)
                spdlog::warn("timeline {}: truncated WAL from {} to {} for proposer term {}", name,
                             format_lsn(flush_before), format_lsn(reply.flush_lsn), e->term);
            spdlog::info("timeline {}: {}proposer {} elected in term {}, streaming from {}", name,
                         greeting.is_sync() ? "sync " : "", conn_.peer(), e->term,
                         format_lsn(reply.flush_lsn));
        } else {
            spdlog::info("timeline {}: ProposerElected for stale term {} refused (term {})", name,
                         e->term, reply.term);
        }
    } else if (const auto* r = std::get_if<WalReadRequest>(&message)) {
        const auto& reply = std::get<WalReadResponse>(*step.reply);
        spdlog::debug("timeline {}: proposer {} read WAL [{}, {}) in term {}: {} bytes (term {})",
                      name, conn_.peer(), format_lsn(r->begin_lsn), format_lsn(r->end_lsn), r->term,
                      reply.wal.size(), reply.term);
    }
    if (step.reply) queue(*step.reply);
    return true;
}

void PushSession::finish_batch_locked() {
    SessionStep step = session_.finish_batch();
    for (const AppendResponse& r : step.batch) queue(r);
    if (step.error) {
        fail_session_locked(*step.error);
        return;
    }
    if (!step.batch.empty()) tl_->maybe_persist_horizons_locked(false);
}

}  // namespace

bool run_wal_push(PgConnection& conn, const PushContext& ctx) {
    std::shared_ptr<Timeline> existing;
    if (!ctx.create_timeline) {
        existing = ctx.registry->find(ctx.tenant_id, ctx.timeline_id);
        if (!existing) {
            const std::string name = format_id(ctx.tenant_id) + "/" + format_id(ctx.timeline_id);
            spdlog::warn(
                "timeline {}: refused proposer {}: the timeline does not exist and the "
                "client asked not to create it (create_timeline=false)",
                name, conn.peer());
            conn.send_error(sqlstate::kUndefinedObject,
                            "timeline " + name + " does not exist on this safekeeper");
            return true;
        }
    }
    // Without creation, the timeline found above is used as it is (deleted
    // since: refused below by its state, never created again).
    Result<std::shared_ptr<Timeline>> tl =
        existing ? Result<std::shared_ptr<Timeline>>(existing)
                 : ctx.registry->find_or_create(ctx.tenant_id, ctx.timeline_id);
    if (!tl) {
        // Sent before the connection closes, with a code that says whether
        // retrying later can help (resources, space) or not.
        const Status& error = tl.status();
        const char* code = is_out_of_resources(error) ? sqlstate::kInsufficientResources
                           : is_out_of_space(error)   ? sqlstate::kDiskFull
                                                      : sqlstate::kIoError;
        spdlog::error("timeline {}/{}: cannot create it for proposer {}: {}", format_id(ctx.tenant_id),
                      format_id(ctx.timeline_id), conn.peer(), error.message());
        conn.send_error(code, "cannot create timeline: " + error.message());
        (void)conn.flush();
        return false;
    }
    if ((*tl)->state() != TimelineState::kActive) {
        const TimelineSnapshot snap = (*tl)->snapshot();
        spdlog::warn("timeline {}: refused proposer {}: timeline is {}: {}", (*tl)->name(),
                     conn.peer(), timeline_state_name(snap.state), snap.last_error);
        conn.send_error(sqlstate::kDataCorrupted, "timeline " + (*tl)->name() + " is " +
                                                      timeline_state_name(snap.state) + ": " +
                                                      snap.last_error);
        return true;
    }
    PushSession session(conn, ctx, *tl);
    return session.run();
}

}  // namespace wp::sk
