# Smoke test: a primary with the library preloaded starts and the extension
# installs; the safekeeper binary answers --help and --version.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SafekeeperNode;

my $node = PostgreSQL::Test::Cluster->new('primary');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'walproposer'\n");
$node->start;

is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'),
    'walproposer', 'primary runs with the library preloaded');
$node->safe_psql('postgres', 'CREATE EXTENSION walproposer');
is($node->safe_psql('postgres',
        "SELECT extversion FROM pg_extension WHERE extname = 'walproposer'"),
    '1.0', 'extension version 1.0 installed');

my $sk = SafekeeperNode::binary();
my ($stdout, $stderr);
ok(IPC::Run::run([ $sk, '--help' ], '>', \$stdout, '2>', \$stderr),
    'safekeeper --help exits 0');
like($stdout, qr/Usage:.*safekeeper/s, 'safekeeper --help prints usage');
ok(IPC::Run::run([ $sk, '--version' ], '>', \$stdout, '2>', \$stderr),
    'safekeeper --version exits 0');
like($stdout, qr/^safekeeper \(walproposer\) \d+\.\d+\.\d+$/m, 'safekeeper --version prints the version');

$node->stop;
done_testing();
