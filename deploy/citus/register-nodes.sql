-- Registers the nodes of compose.yaml's `citus` profile with the coordinator; the citus-init
-- service runs it with psql on the coordinator once all three nodes are healthy.
--
-- Idempotent: citus_set_coordinator_host only records the coordinator's own address, and
-- citus_add_node returns the id of a node that is already registered, so a restart of the
-- stack runs it again harmlessly. Both must run on the coordinator as a superuser (the
-- image's POSTGRES_USER is one). The coordinator holds no shards: every distributed schema's
-- tables go to the workers.
--
-- Another worker later: start it like citus-worker-1, run
--   SELECT citus_add_node('<host>', 5432);
-- here, then SELECT citus_rebalance_start(); to move schemas onto it (docs/scale-out.md).

SELECT citus_set_coordinator_host('citus-coordinator', 5432);
SELECT citus_add_node('citus-worker-1', 5432);
SELECT citus_add_node('citus-worker-2', 5432);

SELECT nodeid, nodename, nodeport, groupid, shouldhaveshards
FROM pg_dist_node
ORDER BY nodeid;
