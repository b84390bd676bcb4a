extern "C" {
#include "postgres.h"

#include "miscadmin.h"
#include "storage/latch.h"
}

#include <algorithm>
#include <cstring>

#include "configuration_file.h"
#include "driver.h"
#include "term_history_file.h"
#include "wait_bits.h"

namespace wp::pg {

namespace {

void copy_text(char* dest, std::size_t size, const std::string& text) {
    snprintf(dest, size, "%s", text.c_str());
}

// Called on a name resolver's thread when a safekeeper's host name is
// resolved: wakes the worker's loop. SetLatch only sets a flag and writes to
// the latch's self-pipe (it is safe in a signal handler), so it is safe from
// another thread too.
void wake_worker_loop() { SetLatch(MyLatch); }

}  // namespace

Driver::Driver(DriverSettings settings) : settings_(std::move(settings)) {
    wp::ProposerConfig config;
    config.acceptor_count = settings_.safekeepers.size();
    config.configuration = settings_.configuration;
    config.greeting = settings_.greeting;
    config.own_term_history = settings_.own_term_history;
    config.timeline_start_lsn = settings_.timeline_start_lsn;
    config.inherited_wal_end = settings_.timeline_switch_point;
    config.reconnect_interval_ms = static_cast<wp::TimeMs>(settings_.reconnect_timeout_ms);
    config.random_seed = settings_.random_seed;
    config.commit_notice_delay_ms = kCommitNoticeDelayMs;
    proposer_ = std::make_unique<wp::Proposer>(std::move(config), &wal_);
    sync_slots();
    if (settings_.wanted_members) {
        wp::Status asked = proposer_->request_membership(*settings_.wanted_members);
        if (!asked.ok())
            elog(WARNING, "walproposer: cannot change the safekeepers to %s: %s",
                 wp::format_member_set(*settings_.wanted_members).c_str(), asked.message().c_str());
        else if (!wp::same_set(*settings_.wanted_members, proposer_->configuration().members) ||
                 proposer_->configuration().is_joint())
            elog(LOG, "walproposer: membership change requested: %s -> %s",
                 wp::format_configuration(proposer_->configuration()).c_str(),
                 wp::format_member_set(*settings_.wanted_members).c_str());
    }
}

void Driver::sync_slots() {
    const std::size_t slots = proposer_->slot_count();
    if (slots > wp::kMaxSafekeepers) {
        fail("more than " + std::to_string(wp::kMaxSafekeepers) +
             " safekeeper slots after membership changes; the worker restarts to rebuild them "
             "from the configuration");
        return;
    }
    while (connections_.size() < slots) {
        connections_.push_back(std::make_unique<SafekeeperConnection>());
        connect_started_at_.push_back(0);
        last_logged_error_.emplace_back();
    }
}

void Driver::fail(std::string error) {
    healthy_ = false;
    if (fatal_error_.empty()) fatal_error_ = std::move(error);
}

wp::SafekeeperAddress Driver::address_of(std::size_t index) const {
    if (proposer_->configuration().generation != 0) return proposer_->slot_member(index).address;
    return index < settings_.safekeepers.size() ? settings_.safekeepers[index]
                                                : wp::SafekeeperAddress{};
}

wp::Status Driver::request_membership(const wp::MemberSet& members) {
    wp::Status asked = proposer_->request_membership(members);
    if (asked.ok())
        elog(LOG, "walproposer: membership change requested: %s -> %s",
             wp::format_configuration(proposer_->configuration()).c_str(),
             wp::format_member_set(members).c_str());
    return asked;
}

void Driver::start(wp::TimeMs now, wp::Lsn local_flush_lsn) {
    execute(proposer_->start(now, local_flush_lsn), now);
}

void Driver::on_wal_available(wp::Lsn local_flush_lsn, wp::TimeMs now) {
    execute(proposer_->on_wal_available(local_flush_lsn, now), now);
}

void Driver::on_tick(wp::TimeMs now) {
    for (std::size_t i = 0; i < connections_.size(); ++i) {
        auto& connection = *connections_[i];
        if (wp::Status status = connection.advance(); !status.ok()) {
            lost(i, status.message(), now);
            continue;
        }
        // libpq's connect_timeout does not apply to non-blocking connects.
        const auto state = connection.state();
        if ((state == SafekeeperConnection::State::kResolving ||
             state == SafekeeperConnection::State::kConnecting ||
             state == SafekeeperConnection::State::kStartingPush) &&
            now - connect_started_at_[i] > static_cast<wp::TimeMs>(settings_.connect_timeout_ms)) {
            connection.close();
            lost(i, "connection timed out after " + std::to_string(settings_.connect_timeout_ms) +
                        " ms" +
                        (state == SafekeeperConnection::State::kResolving
                             ? " resolving its host name"
                             : ""),
                 now);
        }
    }
    execute(proposer_->on_tick(now), now);
}

long Driver::wait_timeout_ms(wp::TimeMs now, long longest) const {
    const std::optional<wp::TimeMs> deadline = proposer_->next_deadline();
    if (!deadline) return longest;
    if (*deadline <= now) return 0;
    return std::min<long>(longest, static_cast<long>(*deadline - now));
}

WaitSocket Driver::wait_socket(std::size_t index) const {
    const auto& connection = *connections_[index];
    return WaitSocket{connection.socket(), connection.wanted_events()};
}

void Driver::on_socket_ready(std::size_t index, wp::TimeMs now) {
    auto& connection = *connections_[index];
    if (connection.state() == SafekeeperConnection::State::kClosed) return;
    inbox_.clear();
    bool became_streaming = false;
    wp::Status status = connection.on_ready(inbox_, became_streaming);
    if (became_streaming) {
        if (!last_logged_error_[index].empty())
            elog(LOG, "walproposer: connected to safekeeper %s",
                 address_of(index).to_string().c_str());
        last_logged_error_[index].clear();
        execute(proposer_->on_connected(index, now), now);
    }
    for (const auto& payload : inbox_) {
        if (connection.state() != SafekeeperConnection::State::kStreaming) break;
        execute(proposer_->on_message(index, payload.data(), payload.size(), now), now);
    }
    if (!status.ok()) lost(index, status.message(), now);
}

void Driver::lost(std::size_t index, const std::string& reason, wp::TimeMs now) {
    if (reason != last_logged_error_[index]) {
        elog(LOG, "walproposer: safekeeper %s: %s", address_of(index).to_string().c_str(),
             reason.c_str());
        last_logged_error_[index] = reason;
    }
    execute(proposer_->on_disconnected(index, now, reason), now);
}

void Driver::connect(std::size_t index, wp::TimeMs now) {
    const wp::SafekeeperAddress address = address_of(index);
    connect_started_at_[index] = now;
    wp::Status status = connections_[index]->start(
        PushTarget{address.host, address.port, settings_.application_name, settings_.tenant_hex,
                   settings_.timeline_hex, "", settings_.extra_conninfo},
        wake_worker_loop);
    if (!status.ok()) lost(index, status.message(), now);
}

void Driver::execute(wp::ProposerOutput&& output, wp::TimeMs now) {
    if (!healthy_) return;
    if (output.persist_configuration) {
        // Nothing may be sent under a configuration before it is durable.
        wp::Status saved = save_configuration(*output.persist_configuration);
        if (!saved.ok()) return fail("cannot persist the membership configuration: " + saved.message());
        const wp::Configuration& c = *output.persist_configuration;
        elog(LOG, "walproposer: %s configuration %s in force",
             c.is_joint() ? "joint" : "membership", wp::format_configuration(c).c_str());
    }
    if (output.persist_own_term_history) {
        wp::Status saved =
            save_term_history(*output.persist_own_term_history, settings_.greeting.pg_timeline);
        if (!saved.ok()) {
            // Nothing may be sent before the history is durable.
            return fail("cannot persist the term history: " + saved.message());
        }
    }
    sync_slots();
    if (!healthy_) return;
    for (std::size_t index : output.disconnect) connections_[index]->close();
    std::vector<std::pair<std::size_t, std::string>> send_failures;
    for (auto& message : output.messages) {
        auto& connection = *connections_[message.acceptor];
        if (connection.state() != SafekeeperConnection::State::kStreaming) continue;
        wp::Status sent = connection.send(std::move(message.payload));
        if (!sent.ok()) send_failures.emplace_back(message.acceptor, sent.message());
    }
    for (std::size_t index : output.connect) connect(index, now);
    for (const auto& line : output.log) {
        const int level = line.level == wp::LogLevel::kError     ? WARNING
                          : line.level == wp::LogLevel::kWarning ? WARNING
                          : line.level == wp::LogLevel::kDebug   ? DEBUG1
                                                                 : LOG;
        elog(level, "walproposer: %s", line.text.c_str());
    }
    // A send failure closed that connection; the proposer learns it only now,
    // after this output was carried out in full.
    for (const auto& [index, reason] : send_failures) lost(index, reason, now);
}

std::optional<std::string> Driver::commit_wait_update(wp::TimeMs now, wp::Lsn oldest_waiter) {
    const wp::ProposerStatus s = proposer_->status();
    std::vector<std::string> addresses;
    for (std::size_t i = 0; i < s.acceptors.size(); ++i) {
        std::string name = address_of(i).to_string();
        // The latest reason a connection failed, as the status view shows it.
        if (s.acceptors[i].last_error.empty() && i < last_logged_error_.size() &&
            !last_logged_error_[i].empty() && s.acceptors[i].state != wp::AcceptorConnState::kStreaming)
            name += " [" + last_logged_error_[i] + "]";
        addresses.push_back(std::move(name));
    }
    return commit_wait_.update(now, oldest_waiter, s, addresses);
}

void Driver::fill_status(SharedStatus* status, wp::Lsn local_flush_lsn) const {
    const wp::ProposerStatus s = proposer_->status();
    copy_text(status->state, sizeof status->state, wp::to_string(s.state));
    status->term = s.term;
    status->commit_lsn = s.commit_lsn;
    status->truncate_lsn = s.truncate_lsn;
    status->local_flush_lsn = local_flush_lsn;
    if (s.state == wp::ProposerState::kSuperseded) {
        copy_text(status->message, sizeof status->message,
                  "superseded by term " + std::to_string(s.superseded_by_term) + " at " +
                      wp::format_lsn(s.superseded_at_lsn) + ": " + s.superseded_reason);
    }
    status->configuration_generation = s.configuration.generation;
    copy_text(status->members, sizeof status->members,
              s.configuration.generation ? wp::format_member_set(s.configuration.members) : "");
    copy_text(status->new_members, sizeof status->new_members,
              s.configuration.new_members ? wp::format_member_set(*s.configuration.new_members) : "");
    // One row per slot that counts (members of the configuration in force).
    int rows = 0;
    for (std::size_t i = 0; i < s.acceptors.size() && rows < kStatusMaxSafekeepers; ++i) {
        const wp::AcceptorStatus& a = s.acceptors[i];
        if (!a.member) continue;
        SafekeeperStatusRow& row = status->safekeepers[rows++];
        copy_text(row.address, sizeof row.address, address_of(i).to_string());
        row.node_id = a.node_id;
        copy_text(row.state, sizeof row.state, wp::to_string(a.state));
        row.term = a.term;
        row.flush_lsn = a.flush_lsn;
        copy_text(row.last_error, sizeof row.last_error,
                  a.last_error.empty() && i < last_logged_error_.size() ? last_logged_error_[i]
                                                                         : a.last_error);
    }
    status->safekeeper_count = rows;
}

}  // namespace wp::pg
