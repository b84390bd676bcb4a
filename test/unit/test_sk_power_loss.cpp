// The power-loss layer (test/support/power_loss_fs.h) on a real directory: a
// forked child changes files through it and loses power; the parent checks
// that exactly the durable state is left.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <string>

#include "storage/durable_file.h"
#include "support/power_loss_fs.h"

using namespace wp;
using namespace wp::sk;

namespace {

std::string make_temp_dir() {
    char pattern[] = "/tmp/wp-powerloss.XXXXXX";
    REQUIRE(::mkdtemp(pattern) != nullptr);
    return pattern;
}

// Runs `body` in a child on a PowerLossFs, then loses power there.
void in_child_then_lose_power(const std::function<void(FileSystem&)>& body) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        PowerLossFs fs(real_file_system());
        body(fs);
        fs.lose_power_and_exit();
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == kPowerLossExitCode);
}

std::string read_or_missing(const std::string& path) {
    auto r = read_whole_file(real_file_system(), path);
    return r ? *r : std::string("<missing>");
}

void must(const Status& s) {
    if (!s) std::abort();  // in the child: the parent sees a wrong exit status
}

}  // namespace

TEST_CASE("power-loss layer: unsynced writes and entries vanish, synced ones stay",
          "[daemon][powerloss]") {
    const std::string dir = make_temp_dir();
    const std::string kept = dir + "/kept", grown = dir + "/grown", fresh = dir + "/fresh",
                      unsynced_dir_entry = dir + "/entry", replaced = dir + "/replaced";
    FileSystem& real = real_file_system();
    REQUIRE(write_file_atomically(real, kept, "AAAA"));
    REQUIRE(write_file_atomically(real, grown, "BBBB"));
    REQUIRE(write_file_atomically(real, replaced, "old"));

    in_child_then_lose_power([&](FileSystem& fs) {
        // Overwritten in place, not synced: back to AAAA.
        auto f = fs.open(kept, OpenMode::kReadWrite);
        must(f.status());
        must((*f)->pwrite_all("XX", 2, 1));
        // Synced, then grown without a sync: the synced part stays.
        auto g = fs.open(grown, OpenMode::kReadWrite);
        must(g.status());
        must((*g)->pwrite_all("CC", 2, 0));
        must((*g)->sync_data());
        must((*g)->pwrite_all("DDDD", 4, 4));
        // A new file whose directory entry was made durable: stays.
        must(write_file_atomically(fs, fresh, "new"));
        // A new file never made durable in its directory: gone.
        auto e = fs.open(unsynced_dir_entry, OpenMode::kCreateExclusive);
        must(e.status());
        must((*e)->pwrite_all("zz", 2, 0));
        must((*e)->sync_data());
        // Replaced by a rename that was not made durable: the old file is back.
        auto t = fs.open(replaced + ".tmp", OpenMode::kCreateExclusive);
        must(t.status());
        must((*t)->pwrite_all("new", 3, 0));
        must((*t)->sync_data());
        must(fs.rename(replaced + ".tmp", replaced));
    });

    CHECK(read_or_missing(kept) == "AAAA");
    CHECK(read_or_missing(grown) == "CCBB");
    CHECK(read_or_missing(fresh) == "new");
    CHECK(read_or_missing(unsynced_dir_entry) == "<missing>");
    CHECK(read_or_missing(replaced) == "old");
    CHECK(read_or_missing(replaced + ".tmp") == "<missing>");
    auto names = real.list_directory(dir);
    REQUIRE(names);
    for (const auto& n : *names) CHECK(n.rfind(".powerloss", 0) != 0);
    REQUIRE(real.remove_tree(dir));
}
