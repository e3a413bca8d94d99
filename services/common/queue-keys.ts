/**
 * Where a queue's keys live. BullMQ names them "<prefix>:<queue>:<type>" and runs every script on one queue's
 * keys, so on Redis Cluster all of a queue's keys must share a slot: the prefix is a hash tag naming the queue,
 * "{<QUEUE_PREFIX>:<queue>}", which puts each queue on its own slot (different queues spread over the masters).
 * On one node the prefix stays QUEUE_PREFIX, so existing deployments keep their keys ("bull:payments:…").
 * Every Queue and Worker is built with this prefix: API, worker, queue-state reads, console, tests.
 */
import type { QueueName } from './queue-catalog';

export interface KeyPlacement {
  queuePrefix: string;
  redis: { clusterNodes: readonly unknown[] };
}

export function queueKeyPrefix(config: KeyPlacement, queue: QueueName): string {
  if (config.redis.clusterNodes.length === 0) return config.queuePrefix;
  // Braces already in QUEUE_PREFIX (the old "{bull}" advice) would tag every queue alike: only ours count.
  return `{${config.queuePrefix.replace(/[{}]/g, '')}:${queue}}`;
}
