// `safekeeper pull-timeline ...`: the operator command that asks a new
// safekeeper (--to) to copy a timeline from a healthy one (--from), through
// the destination's POST .../pull_timeline (docs/safekeeper.md). It only
// sends the request and prints the outcome; the copy runs in the
// destination daemon. Exit status: 0 pulled, 1 the pull failed (the error
// says why), 2 bad flags.
#pragma once

namespace wp::sk {

// argv[0] is "pull-timeline".
int run_pull_timeline_command(int argc, char** argv);

}  // namespace wp::sk
