#include "walproposer/acceptor_session.h"

#include <utility>
#include <variant>

namespace wp {

std::uint64_t StreamingSlot::claim(std::uint64_t session_id, Term term) {
    const std::uint64_t previous = holder_ != session_id ? holder_ : 0;
    holder_ = session_id;
    term_ = term;
    return previous;
}

void StreamingSlot::release(std::uint64_t session_id) {
    if (holder_ == 0 || holder_ != session_id) return;
    holder_ = 0;
    term_ = 0;
}

const char* session_error_kind_name(SessionErrorKind kind) {
    switch (kind) {
        case SessionErrorKind::kProtocol:
            return "protocol";
        case SessionErrorKind::kWrongTimeline:
            return "wrong timeline";
        case SessionErrorKind::kRefused:
            return "refused";
        case SessionErrorKind::kFenced:
            return "fenced";
        case SessionErrorKind::kStorage:
            return "storage";
    }
    return "unknown";
}

AcceptorSession::AcceptorSession(std::uint64_t id, AcceptorSessionConfig config, Acceptor& acceptor,
                                 StreamingSlot& slot)
    : id_(id), config_(config), acceptor_(acceptor), slot_(slot) {}

SessionStep AcceptorSession::fail(SessionStep step, SessionErrorKind kind,
                                  std::string message) const {
    step.reply.reset();
    step.error = SessionError{kind, std::move(message)};
    return step;
}

SessionStep AcceptorSession::fail_from_acceptor(SessionStep step,
                                                const std::string& message) const {
    // After a storage failure the acceptor refuses everything from then on;
    // anything else is this proposer's problem and ends only its connection.
    return fail(std::move(step),
                acceptor_.failed() ? SessionErrorKind::kStorage : SessionErrorKind::kRefused,
                message);
}

SessionStep AcceptorSession::finish_batch() {
    SessionStep step;
    if (pending_appends_ == 0) return step;
    const std::size_t n = pending_appends_;
    pending_appends_ = 0;
    Status s = acceptor_.flush();
    if (!s.ok())
        return fail(std::move(step), SessionErrorKind::kStorage,
                    "WAL flush failed: " + s.message());
    step.batch.assign(n, acceptor_.make_append_response());
    return step;
}

void AcceptorSession::close() {
    slot_.release(id_);
}

SessionStep AcceptorSession::handle(const Message& message) {
    SessionStep step;
    // Replies go out in request order: the appends of the batch are flushed
    // and answered before any other message.
    if (!std::holds_alternative<AppendRequest>(message)) {
        step = finish_batch();
        if (step.error) return step;
    }
    if (!greeted_ && !std::holds_alternative<ProposerGreeting>(message))
        return fail(std::move(step), SessionErrorKind::kProtocol,
                    std::string("expected ProposerGreeting, got ") + message_name(message));

    if (const auto* g = std::get_if<ProposerGreeting>(&message)) {
        if (config_.check_timeline &&
            (g->tenant_id != config_.tenant_id || g->timeline_id != config_.timeline_id))
            return fail(std::move(step), SessionErrorKind::kWrongTimeline,
                        "ProposerGreeting names a different tenant/timeline than the connection "
                        "options");
        auto reply = acceptor_.handle_greeting(*g);
        if (!reply) return fail_from_acceptor(std::move(step), reply.message());
        greeted_ = true;
        greeting_ = *g;
        step.reply = std::move(*reply);
        return step;
    }
    if (const auto* v = std::get_if<VoteRequest>(&message)) {
        auto reply = acceptor_.handle_vote_request(*v);
        if (!reply) return fail_from_acceptor(std::move(step), reply.message());
        step.reply = std::move(*reply);
        return step;
    }
    if (const auto* e = std::get_if<ProposerElected>(&message)) {
        auto reply = acceptor_.handle_proposer_elected(greeting_, *e);
        if (!reply) {
            // Not a protocol error: this proposer (an old primary) lost its
            // place for good.
            if (!acceptor_.failed() && reply.message().rfind("fenced:", 0) == 0)
                return fail(std::move(step), SessionErrorKind::kFenced, reply.message());
            return fail_from_acceptor(std::move(step), reply.message());
        }
        if (reply->term == e->term) {
            step.elected = true;
            step.superseded = slot_.claim(id_, e->term);
        }
        step.reply = std::move(*reply);
        return step;
    }
    if (const auto* a = std::get_if<AppendRequest>(&message)) {
        if (!config_.unsafe_test_only_any_streamer && !slot_.held_by(id_) &&
            a->term >= acceptor_.term())
            return fail(std::move(step), SessionErrorKind::kRefused,
                        "another proposer connection is streaming on this timeline");
        auto outcome = acceptor_.handle_append_request(*a);
        if (!outcome) return fail_from_acceptor(std::move(step), outcome.message());
        if (outcome->needs_flush) {
            ++pending_appends_;
            step.appended = true;
        } else {
            step.reply = std::move(outcome->reply);
        }
        return step;
    }
    if (const auto* r = std::get_if<WalReadRequest>(&message)) {
        // Reads durable WAL only; the appends of the batch were flushed above.
        auto reply = acceptor_.handle_wal_read(*r);
        if (!reply) return fail_from_acceptor(std::move(step), reply.message());
        step.reply = std::move(*reply);
        return step;
    }
    if (const auto* c = std::get_if<ConfigurationUpdate>(&message)) {
        auto reply = acceptor_.handle_configuration_update(*c);
        if (!reply) return fail_from_acceptor(std::move(step), reply.message());
        step.reply = std::move(*reply);
        return step;
    }
    return fail(std::move(step), SessionErrorKind::kProtocol,
                std::string("unexpected message from proposer: ") + message_name(message));
}

}  // namespace wp
