// isolation.suite.ts across two nodes on one PostgreSQL store: clients registered, assigned and
// revoked through node 1, partitions made through both nodes, links served by node 2 (see
// NodesTarget in test/support/processor-target.ts); neither client reaches the other's slot,
// sessions or objects.
import { isolationSuite } from '../processor/isolation.suite.js';

isolationSuite('software', 'nodes');
