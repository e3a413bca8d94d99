/** A real Redis Cluster for tests (scripts/lib/redis-cluster.ts): one per test file, never one per case. */
export { startRedisCluster, type RedisClusterHandle, type RedisClusterOptions } from '../../scripts/lib/redis-cluster';
