#include "send_wal/wal_sender.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>
#include <vector>

#include "storage/wal_format.h"
#include "walproposer/byte_order.h"
#include "walproposer/pg_timeline_history.h"

namespace wp::sk {
namespace {

constexpr std::uint32_t kMaxPagesPerMessage = 16;
constexpr auto kKeepaliveInterval = std::chrono::seconds(10);
constexpr auto kConsumerTimeout = std::chrono::seconds(60);

using Clock = std::chrono::steady_clock;

// Microseconds since 2000-01-01 00:00:00 UTC (PostgreSQL's TimestampTz).
std::int64_t pg_now_us() {
    const auto unix_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
    return unix_us - 946684800LL * 1000000LL;
}

std::int64_t unix_now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

class WalSender {
  public:
    WalSender(PgConnection& conn, const ReplicationContext& ctx, std::shared_ptr<Timeline> tl)
        : conn_(conn), ctx_(ctx), tl_(std::move(tl)) {}
    ~WalSender() {
        if (consumer_id_) {
            tl_->consumers().remove(consumer_id_);
            forward_feedback();
        }
        if (efd_ >= 0) ::close(efd_);
    }

    ReplicationOutcome run(const ReplicationCommand& cmd, const TimelineSnapshot& snap);

  private:
    enum class Step { kContinue, kStop, kClose };
    Step handle_client_message(const FrontendMessage& m);
    void send_keepalive(bool reply_requested);
    bool send_wal(Lsn end);
    void forward_feedback();
    void send_next_timeline();

    PgConnection& conn_;
    const ReplicationContext& ctx_;
    std::shared_ptr<Timeline> tl_;
    int efd_ = -1;
    std::uint64_t consumer_id_ = 0;
    Lsn sent_ = kInvalidLsn;
    std::uint32_t segment_size_ = 0;
    Clock::time_point last_send_{}, last_receive_{};
    std::vector<std::uint8_t> buf_;
    bool client_done_ = false;
    // Streaming an earlier PostgreSQL timeline: where it ends and which
    // timeline follows (kInvalidLsn: the current timeline, no end).
    Lsn switch_point_ = kInvalidLsn;
    std::uint32_t next_tli_ = 0;
    std::uint32_t tli_ = 0;  // the PostgreSQL timeline this stream serves
    bool find_switch_point(std::uint32_t current_tli);
    bool server_done_ = false;  // we sent CopyDone at the switch point
    std::string persisted_slot_;  // the persisted slot this stream advances (empty: none)
    std::string removed_segment_name(Lsn lsn) const {
        return wal_segment_file_name(tli_, segment_of(lsn, segment_size_), segment_size_);
    }
};

// The timeline this stream serves became an earlier one (a promoted
// standby's proposer was elected on `current_tli`): from the history file it
// sent, where ours ends and which timeline follows. false (error sent) when
// the history does not name our timeline.
bool WalSender::find_switch_point(std::uint32_t current_tli) {
    std::string content;
    {
        std::lock_guard<std::mutex> g(tl_->mutex());
        if (WalStorage* st = tl_->storage()) content = st->control().pg_timeline_history;
    }
    auto sw = pg_timeline_switch_point(content, tli_, current_tli);
    if (!sw || sent_ > sw->first) {
        conn_.send_error(sqlstate::kObjectNotInPrerequisiteState,
                         "PostgreSQL timeline " + std::to_string(tli_) +
                             " ended; the stream at " + format_lsn(sent_) +
                             " is not in the history of timeline " + std::to_string(current_tli));
        return false;
    }
    switch_point_ = sw->first;
    next_tli_ = sw->second;
    spdlog::info("timeline {}: WAL consumer {}: PostgreSQL timeline {} ends at {}, next {}",
                 tl_->name(), conn_.peer(), tli_, format_lsn(switch_point_), next_tli_);
    return true;
}

// The end of an earlier timeline: the next timeline and where it starts.
void WalSender::send_next_timeline() {
    conn_.send_typed_result({{"next_tli", kInt8Oid}, {"next_tli_startpos", kTextOid}},
                            {{std::to_string(next_tli_), format_lsn(switch_point_)}}, "SELECT");
    conn_.send_command_complete("START_REPLICATION");
}

void WalSender::forward_feedback() {
    const auto [xmin, catalog_xmin] = tl_->consumers().min_hot_standby_feedback();
    std::lock_guard<std::mutex> g(tl_->mutex());
    if (Acceptor* a = tl_->acceptor()) a->set_hot_standby_feedback(xmin, catalog_xmin);
}

void WalSender::send_keepalive(bool reply_requested) {
    if (server_done_) return;  // no CopyData after our CopyDone
    std::vector<std::uint8_t> m;
    m.push_back('k');
    put_be64(m, tl_->published_commit_lsn());
    put_be64(m, static_cast<std::uint64_t>(pg_now_us()));
    m.push_back(reply_requested ? 1 : 0);
    conn_.send_copy_data(m.data(), m.size());
    last_send_ = Clock::now();
}

// Sends one XLogData message of WAL starting at sent_, ending at `end` or
// earlier (page/segment/size rules). false on a read error (reported).
bool WalSender::send_wal(Lsn end) {
    const Lsn page_start = sent_ - sent_ % kWalPageSize;
    Lsn limit = page_start + static_cast<Lsn>(kMaxPagesPerMessage) * kWalPageSize;
    const Lsn segment_end = sent_ - sent_ % segment_size_ + segment_size_;
    limit = std::min({limit, segment_end, end});
    const std::size_t want = static_cast<std::size_t>(limit - sent_);
    buf_.assign(25, 0);
    buf_.resize(25 + want);
    std::size_t got = 0;
    {
        std::lock_guard<std::mutex> g(tl_->mutex());
        WalStorage* st = tl_->storage();
        if (!st || tl_->state() != TimelineState::kActive) {
            conn_.send_error(sqlstate::kObjectNotInPrerequisiteState, "timeline stopped serving");
            return false;
        }
        auto n = st->read_wal(sent_, buf_.data() + 25, want);
        if (!n && (n.status().kind() == StatusKind::kNotFound || sent_ < st->timeline_start_lsn())) {
            conn_.send_error(sqlstate::kUndefinedFile,
                             "requested WAL segment " + removed_segment_name(sent_) +
                                 " has already been removed (WAL retention; use a replication "
                                 "slot to keep it)");
            return false;
        }
        if (!n) {
            spdlog::error("timeline {}: WAL sender for {}: cannot read WAL at {}: {}", tl_->name(),
                          conn_.peer(), format_lsn(sent_), n.status().message());
            conn_.send_error(sqlstate::kIoError, "cannot read WAL at " + format_lsn(sent_) + ": " +
                                                     n.status().message());
            return false;
        }
        got = *n;
    }
    if (got == 0) {
        // commit_lsn is never above the durable end; this is a bug guard.
        conn_.send_error(sqlstate::kInternalError,
                         "WAL at " + format_lsn(sent_) + " is not available on this safekeeper");
        return false;
    }
    buf_.resize(25 + got);
    std::vector<std::uint8_t> header;
    header.push_back('w');
    put_be64(header, sent_);
    put_be64(header, end);
    put_be64(header, static_cast<std::uint64_t>(pg_now_us()));
    std::copy(header.begin(), header.end(), buf_.begin());
    conn_.send_copy_data(buf_.data(), buf_.size());
    sent_ += got;
    last_send_ = Clock::now();
    return true;
}

WalSender::Step WalSender::handle_client_message(const FrontendMessage& m) {
    last_receive_ = Clock::now();
    if (m.type == 'c') {
        client_done_ = true;
        return Step::kStop;
    }
    if (m.type == 'X') return Step::kClose;
    if (m.type != 'd') {
        conn_.send_error(sqlstate::kProtocolViolation, std::string("unexpected message type '") +
                                                           m.type + "' during START_REPLICATION");
        return Step::kClose;
    }
    const std::string& p = m.payload;
    if (p.empty()) return Step::kContinue;
    switch (p[0]) {
        case 'r': {  // standby status update
            if (p.size() < 34) break;
            tl_->consumers().set_reply(consumer_id_, get_be64(p.data() + 1), get_be64(p.data() + 9),
                                       get_be64(p.data() + 17), unix_now_ms());
            if (!persisted_slot_.empty()) {
                // The slot keeps what the consumer has not flushed yet
                // (never beyond what it was sent); persisted about once a second.
                tl_->slots()->advance(persisted_slot_, std::min<Lsn>(get_be64(p.data() + 9), sent_));
                tl_->persist_slots(false);
            }
            if (p[33] != 0) {  // reply requested: answer at once
                send_keepalive(false);
                (void)conn_.flush();
            }
            return Step::kContinue;
        }
        case 'h': {  // hot-standby feedback
            if (p.size() < 17) break;
            const std::uint32_t xmin = get_be32(p.data() + 9);
            const std::uint32_t xmin_epoch = get_be32(p.data() + 13);
            std::uint32_t catalog_xmin = 0, catalog_epoch = 0;
            if (p.size() >= 25) {
                catalog_xmin = get_be32(p.data() + 17);
                catalog_epoch = get_be32(p.data() + 21);
            }
            // Transaction ids 0..2 are special (invalid, bootstrap, frozen): none.
            const std::uint64_t full_xmin =
                xmin >= 3 ? (static_cast<std::uint64_t>(xmin_epoch) << 32) | xmin : 0;
            const std::uint64_t full_catalog =
                catalog_xmin >= 3 ? (static_cast<std::uint64_t>(catalog_epoch) << 32) | catalog_xmin
                                  : 0;
            if (tl_->consumers().set_hot_standby_feedback(consumer_id_, full_xmin, full_catalog))
                forward_feedback();
            return Step::kContinue;
        }
        case 'p':  // pg_receivewal / walreceiver never send this; ignore
            return Step::kContinue;
        default:
            break;
    }
    conn_.send_error(sqlstate::kProtocolViolation,
                     std::string("invalid standby message type '") + p[0] + "' or length");
    return Step::kClose;
}

ReplicationOutcome WalSender::run(const ReplicationCommand& cmd, const TimelineSnapshot& snap) {
    const std::string& name = tl_->name();
    segment_size_ = snap.wal_segment_size;
    if (!is_valid_segment_size(segment_size_)) {
        conn_.send_error(sqlstate::kObjectNotInPrerequisiteState, "timeline has no segment size");
        return ReplicationOutcome::kContinue;
    }
    const std::uint32_t tli = cmd.timeline ? cmd.timeline : snap.pg_timeline;
    tli_ = tli;
    const Lsn start = cmd.start_lsn;
    if (tli != snap.pg_timeline) {
        // An earlier timeline of the history: its WAL is ours up to the
        // switch point, where the stream ends and the next timeline is named.
        std::string content;
        {
            std::lock_guard<std::mutex> g(tl_->mutex());
            if (WalStorage* st = tl_->storage()) content = st->control().pg_timeline_history;
        }
        auto sw = tli < snap.pg_timeline ? pg_timeline_switch_point(content, tli, snap.pg_timeline)
                                         : std::nullopt;
        if (!sw || start > sw->first) {
            conn_.send_error(sqlstate::kObjectNotInPrerequisiteState,
                             "requested starting point " + format_lsn(start) + " on timeline " +
                                 std::to_string(tli) + " is not in this server's history");
            return ReplicationOutcome::kContinue;
        }
        switch_point_ = sw->first;
        next_tli_ = sw->second;
        if (start == switch_point_) {  // nothing to stream: name the next timeline
            send_next_timeline();
            return ReplicationOutcome::kContinue;
        }
    }
    if (!cmd.slot_name.empty()) {
        if (Status valid = validate_slot_name(cmd.slot_name); !valid) {
            conn_.send_error(sqlstate::kInvalidName, valid.message());
            return ReplicationOutcome::kContinue;
        }
    }
    const Lsn commit = tl_->published_commit_lsn();
    std::optional<SlotData> slot;
    if (!cmd.slot_name.empty() && tl_->slots()) slot = tl_->slots()->find(cmd.slot_name);
    if (slot && slot->invalidated) {
        conn_.send_error(sqlstate::kUndefinedFile,
                         "requested WAL segment " + removed_segment_name(start) +
                             " has already been removed: replication slot \"" + slot->name +
                             "\" was invalidated because it held more WAL than "
                             "--max-wal-retention allows (cut off at " +
                             format_lsn(slot->invalidated_at) +
                             "); drop it and create it again");
        return ReplicationOutcome::kContinue;
    }
    // The WAL this safekeeper holds: its timeline start moves up as WAL
    // retention removes old segments.
    const Lsn first_held = tl_->snapshot().timeline_start_lsn;
    if (start == kInvalidLsn || first_held == kInvalidLsn || start < first_held) {
        conn_.send_error(sqlstate::kUndefinedFile,
                         "requested WAL segment " + removed_segment_name(start) +
                             " has already been removed (requested starting point " +
                             format_lsn(start) + " is before the first WAL this safekeeper holds, " +
                             format_lsn(first_held) + ")");
        return ReplicationOutcome::kContinue;
    }
    if (start > commit) {
        conn_.send_error(sqlstate::kObjectNotInPrerequisiteState,
                         "requested starting point " + format_lsn(start) +
                             " is ahead of the commit position of this safekeeper " +
                             format_lsn(commit));
        return ReplicationOutcome::kContinue;
    }
    efd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (efd_ < 0) {
        conn_.send_error(sqlstate::kInternalError, std::string("eventfd: ") + std::strerror(errno));
        return ReplicationOutcome::kContinue;
    }
    ConsumerInfo info;
    info.peer = conn_.peer();
    info.application_name = ctx_.application_name;
    info.role = ctx_.role;
    info.slot_name = cmd.slot_name;
    info.pg_timeline = tli;
    info.start_lsn = start;
    info.sent_lsn = start;
    consumer_id_ = tl_->consumers().add(info, efd_);
    sent_ = start;
    if (slot) {
        persisted_slot_ = slot->name;
        if (slot->restart_lsn == kInvalidLsn) {
            // A slot created without RESERVE_WAL reserves from its first start.
            tl_->slots()->advance(slot->name, start);
            tl_->persist_slots(true);
        }
    }
    spdlog::info("timeline {}: WAL consumer {} ({}{}) starts at {}", name, conn_.peer(),
                 ctx_.application_name.empty() ? "no name" : ctx_.application_name,
                 cmd.slot_name.empty() ? "" : ", slot " + cmd.slot_name, format_lsn(start));

    conn_.send_copy_both_response();
    if (!conn_.flush()) return ReplicationOutcome::kClose;
    last_send_ = last_receive_ = Clock::now();
    std::string end_reason = "consumer ended the stream";
    for (;;) {
        // 1. Everything the consumer sent.
        while (conn_.message_ready()) {
            auto m = conn_.read_message();
            if (!m) {
                if (m.status().kind() == StatusKind::kInvalidInput)
                    conn_.send_error(sqlstate::kProtocolViolation, m.status().message());
                (void)conn_.flush();
                spdlog::info("timeline {}: WAL consumer {} disconnected at {}", name, conn_.peer(),
                             format_lsn(sent_));
                return ReplicationOutcome::kClose;
            }
            const Step s = handle_client_message(*m);
            if (s == Step::kClose) {
                (void)conn_.flush();
                spdlog::info("timeline {}: WAL consumer {} left at {}", name, conn_.peer(),
                             format_lsn(sent_));
                return ReplicationOutcome::kClose;
            }
            if (s == Step::kStop) break;
        }
        if (client_done_) break;
        if (tl_->state() != TimelineState::kActive) {
            conn_.send_error(sqlstate::kAdminShutdown, "timeline " + name + " stopped serving");
            (void)conn_.flush();
            return ReplicationOutcome::kClose;
        }
        // 2. Committed WAL not yet sent (on a historic timeline: up to its end).
        Lsn commit_now = tl_->published_commit_lsn();
        // A proposer on a later PostgreSQL timeline was elected while we
        // stream this one (failover): the stream ends at the switch point,
        // like a walsender's at a promotion. Read after commit_now: WAL of the
        // new timeline is committed only after its identity is recorded.
        if (switch_point_ == kInvalidLsn && commit_now > sent_) {
            const std::uint32_t current_tli = tl_->snapshot().pg_timeline;
            if (current_tli > tli_ && !find_switch_point(current_tli)) {
                (void)conn_.flush();
                return ReplicationOutcome::kClose;
            }
        }
        if (switch_point_ != kInvalidLsn && commit_now >= switch_point_) {
            commit_now = switch_point_;
            if (sent_ == switch_point_ && !server_done_) {
                conn_.send_copy_done();  // end of this timeline; wait for the consumer's
                server_done_ = true;
            }
        }
        if (sent_ < commit_now) {
            if (!send_wal(commit_now)) {
                (void)conn_.flush();
                return ReplicationOutcome::kClose;
            }
            tl_->consumers().set_sent(consumer_id_, sent_);
            if (conn_.pending_output() >= (256u << 10) || sent_ >= commit_now) {
                if (!conn_.flush()) return ReplicationOutcome::kClose;
            }
            continue;
        }
        if (!conn_.flush()) return ReplicationOutcome::kClose;
        // 3. Caught up: wait for a commit, a consumer message, or the timer.
        const auto now = Clock::now();
        if (now - last_receive_ >= kConsumerTimeout) {
            end_reason = "no message from the consumer for 60 s";
            spdlog::warn("timeline {}: WAL consumer {}: {}; closing", name, conn_.peer(),
                         end_reason);
            return ReplicationOutcome::kClose;
        }
        if (now - last_send_ >= kKeepaliveInterval && !server_done_) {
            // Ask for a reply once half of the consumer timeout has passed.
            send_keepalive(now - last_receive_ >= kConsumerTimeout / 2);
            if (!conn_.flush()) return ReplicationOutcome::kClose;
            continue;
        }
        const auto wait = std::min(
            kKeepaliveInterval - (now - last_send_),
            std::chrono::duration_cast<Clock::duration>(kConsumerTimeout - (now - last_receive_)));
        const int timeout_ms =
            static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(wait).count()) +
            1;
        pollfd fds[2] = {{conn_.fd(), POLLIN, 0}, {efd_, POLLIN, 0}};
        const int n = ::poll(fds, 2, timeout_ms);
        if (n < 0 && errno != EINTR) {
            spdlog::error("timeline {}: WAL sender poll: {}", name, std::strerror(errno));
            return ReplicationOutcome::kClose;
        }
        if (n > 0 && (fds[1].revents & POLLIN)) {
            std::uint64_t counter;
            (void)!::read(efd_, &counter, sizeof counter);
        }
        if (n > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) && !conn_.message_ready()) {
            // Readable but no complete message: EOF, error, or a partial one.
            auto m = conn_.read_message();  // blocks only until the rest arrives
            if (!m) {
                spdlog::info("timeline {}: WAL consumer {} disconnected at {}", name, conn_.peer(),
                             format_lsn(sent_));
                return ReplicationOutcome::kClose;
            }
            if (handle_client_message(*m) == Step::kClose) {
                (void)conn_.flush();
                return ReplicationOutcome::kClose;
            }
        }
    }
    // The consumer sent CopyDone: end the copy and go back to command mode.
    if (server_done_) {
        send_next_timeline();
        spdlog::info("timeline {}: WAL consumer {} reached the end of PostgreSQL timeline {} at {}",
                     name, conn_.peer(), tli, format_lsn(sent_));
        return ReplicationOutcome::kContinue;
    }
    conn_.send_copy_done();
    conn_.send_command_complete("START_REPLICATION");
    spdlog::info("timeline {}: WAL consumer {} ended streaming at {}", name, conn_.peer(),
                 format_lsn(sent_));
    return ReplicationOutcome::kContinue;
}

}  // namespace

ReplicationOutcome run_wal_sender(PgConnection& conn, const ReplicationContext& ctx,
                                  std::shared_ptr<Timeline> tl, const ReplicationCommand& cmd,
                                  const TimelineSnapshot& snap) {
    WalSender sender(conn, ctx, std::move(tl));
    return sender.run(cmd, snap);
}

}  // namespace wp::sk
