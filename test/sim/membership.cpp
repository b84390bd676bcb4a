// The membership model of wpsim (--membership; see world.h): more acceptors
// exist than are members; an operator asks the running primary to add,
// remove or replace members (sometimes crashing it right after), and the
// membership invariants of docs/consensus.md are checked after every step.
#include <algorithm>

#include "world.h"

namespace wpsim {

namespace {

Member sim_member(int acceptor) {
    return Member{static_cast<NodeId>(acceptor + 1),
                  SafekeeperAddress{"a" + std::to_string(acceptor + 1), 5454}};
}

std::vector<NodeId> ids_of(const std::vector<int>& acceptors) {
    std::vector<NodeId> ids;
    for (int a : acceptors) ids.push_back(static_cast<NodeId>(a + 1));
    return ids;
}

}  // namespace

int World::acceptor_of(int p, std::size_t slot) const {
    const Proposer* proposer = proposers_[p].proposer.get();
    const NodeId id = proposer ? proposer->slot_member(slot).id : 0;
    return id == 0 ? static_cast<int>(slot) : static_cast<int>(id - 1);
}

std::optional<std::size_t> World::slot_of(int p, int acceptor) const {
    const Proposer* proposer = proposers_[p].proposer.get();
    if (!proposer || proposer->configuration().generation == 0)
        return static_cast<std::size_t>(acceptor);
    for (std::size_t k = 0; k < proposer->slot_count(); ++k)
        if (proposer->slot_member(k).id == static_cast<NodeId>(acceptor + 1)) return k;
    return std::nullopt;
}

bool World::durable_majority(const std::vector<int>& holders, const Configuration& c,
                             bool joint) const {
    if (!membership_ || c.generation == 0) return holders.size() >= majority();
    if (joint) return is_quorum(c, ids_of(holders));
    return is_majority_of(c.members, ids_of(holders));
}

void World::membership_setup() {
    // Three members (nodes 1-3) of five or six acceptors.
    Configuration initial;
    initial.generation = 1;
    for (int k = 0; k < 3; ++k) initial.members.push_back(sim_member(k));
    for (SimProposer& sp : proposers_) sp.persisted_config = initial;
    in_force_ = initial;
    configs_by_key_[{1, 0}] = initial;
    seen_config_key_.assign(acceptors_.size(), ConfigurationKey{});
}

void World::on_persist_configuration(int p, const Configuration& c) {
    SimProposer& sp = proposers_[p];
    const Configuration before = sp.persisted_config;
    sp.persisted_config = c;
    const auto key = std::make_pair(c.generation, c.created_term);
    auto it = configs_by_key_.find(key);
    if (it != configs_by_key_.end() && it->second != c)
        fail("membership: one configuration key, two configurations",
             format_configuration(it->second) + " and " + format_configuration(c));
    const bool created = it == configs_by_key_.end();
    configs_by_key_[key] = c;
    if (created) {
        if (c.is_joint()) ++stats_->joint_configs;
        else ++stats_->changes_done;
        // The proposer that leaves a joint configuration must hold every
        // committed byte on a majority of the new set (else an election in
        // it can lose them; checked as invariant 2 below).
    } else if (before.key() < c.key()) {
        ++stats_->adopted_configs;
    }
    note("P" + std::to_string(p) + " persists configuration " + format_configuration(c));
    if (in_force_.key() < c.key()) in_force_ = c;
}

void World::membership_step() {
    if (change_crash_p_ >= 0 && step_ >= change_crash_at_) {
        const int p = change_crash_p_;
        change_crash_p_ = -1;
        if (proposers_[p].running()) {
            ++stats_->change_crashes;
            note("P" + std::to_string(p) + " crashes during its membership change");
            restart_proposer(p);
        }
    }
    if (!rng_.chance(1)) return;
    std::vector<int> elected;
    for (std::size_t p = 0; p < proposers_.size(); ++p)
        if (proposers_[p].running() && proposers_[p].proposer->state() == ProposerState::kElected)
            elected.push_back(static_cast<int>(p));
    if (elected.empty()) return;
    const int p = elected[rng_.below(elected.size())];
    const Configuration& c = proposers_[p].proposer->configuration();
    const MemberSet current = c.is_joint() ? *c.new_members : c.members;
    std::vector<int> outside;
    for (std::size_t k = 0; k < acceptors_.size(); ++k)
        if (!set_contains(current, static_cast<NodeId>(k + 1))) outside.push_back(static_cast<int>(k));
    MemberSet target = current;
    const unsigned op = static_cast<unsigned>(rng_.below(3));
    std::string what;
    if ((op == 0 || current.size() <= 2) && !outside.empty() && current.size() < 5) {
        const int add = outside[rng_.below(outside.size())];
        target.push_back(sim_member(add));
        what = "add node " + std::to_string(add + 1);
    } else if (op == 1 && current.size() > 2) {
        const std::size_t i = rng_.below(target.size());
        what = "remove node " + std::to_string(target[i].id);
        target.erase(target.begin() + static_cast<long>(i));
    } else if (!outside.empty()) {
        const std::size_t i = rng_.below(target.size());
        const int add = outside[rng_.below(outside.size())];
        what = "replace node " + std::to_string(target[i].id) + " by node " + std::to_string(add + 1);
        target[i] = sim_member(add);
    } else {
        return;
    }
    Status s = proposers_[p].proposer->request_membership(target);
    ++stats_->change_requests;
    note("operator asks P" + std::to_string(p) + " to " + what + ": " + format_member_set(target) +
         (s.ok() ? "" : " -- refused: " + s.message()));
    if (!s.ok()) fail("membership: a valid change was refused", s.message());
    // A change while the primary crashes: restart it a little later.
    if (change_crash_p_ < 0 && rng_.chance(30)) {
        change_crash_p_ = p;
        change_crash_at_ = step_ + 1 + rng_.below(60);
    }
}

void World::check_membership() {
    for (std::size_t k = 0; k < acceptors_.size(); ++k) {
        const ConfigurationKey key = acceptors_[k].storage.durable.configuration.key();
        if (key < seen_config_key_[k])
            fail("membership: an acceptor's configuration went back",
                 "A" + std::to_string(k) + " held generation " +
                     std::to_string(seen_config_key_[k].generation) + " and now " +
                     std::to_string(key.generation));
        seen_config_key_[k] = key;
    }
}

}  // namespace wpsim
