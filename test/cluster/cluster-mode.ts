/**
 * Imported FIRST by the test/cluster/*-suite.test.ts files: before any case of the suite they import runs, starts
 * one Redis Cluster for the whole file and points the shared-Redis helpers at it (TEST_REDIS_CLUSTER_NODES, see
 * test/helpers/redis.ts); stops it when the file ends. The suite's own cases then run unchanged, in cluster mode.
 */
import t from 'tap';
import { startRedisCluster, type RedisClusterHandle } from '../helpers/redis-cluster';

let cluster: RedisClusterHandle | undefined;

t.before(async () => {
  cluster = await startRedisCluster();
  process.env.TEST_REDIS_CLUSTER_NODES = cluster.seeds;
  t.comment(`Redis Cluster (3 masters + 3 replicas) at ${cluster.seeds}`);
});

t.teardown(async () => {
  delete process.env.TEST_REDIS_CLUSTER_NODES;
  if (!cluster) return;
  // Proof the suite ran on the cluster, not on the machine's Redis: the masters executed its commands.
  const processed = await Promise.all((await cluster.masters()).map((s) => cluster!.commandsProcessed(s)));
  await cluster.stop();
  if (processed.filter((n) => n > 100).length < 2) {
    throw new Error(`the suite's traffic did not reach the cluster's masters (commands per master: ${processed.join(', ')})`);
  }
});
