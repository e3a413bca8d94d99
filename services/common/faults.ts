/**
 * Runtime fault injection for the simulated providers, kept in Redis so every worker replica sees the same
 * settings. Workers read them through a small cache refreshed every second (not one Redis call per job).
 */
import type { RedisClient } from './redis';
import type { QueueName } from './queue-catalog';

export interface FaultSettings {
  /** 0..1 share of attempts failing with a retryable provider error. */
  failureRate: number;
  /** 0..1 share of attempts that hang until the job timeout aborts them. */
  timeoutRate: number;
  /** 0..1 share of attempts answered with 429 (rate limited). */
  rateLimitRate: number;
  /** Added latency of every provider call, in ms. */
  latencyMs: number;
}

export const NO_FAULTS: FaultSettings = Object.freeze({ failureRate: 0, timeoutRate: 0, rateLimitRate: 0, latencyMs: 0 });

/** JSON Schema for PUT /v1/admin/faults/:queue (all fields optional; omitted ones keep their value). */
export const faultSettingsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    failureRate: { type: 'number', minimum: 0, maximum: 1 },
    timeoutRate: { type: 'number', minimum: 0, maximum: 1 },
    rateLimitRate: { type: 'number', minimum: 0, maximum: 1 },
    latencyMs: { type: 'number', minimum: 0, maximum: 600_000 },
  },
} as const;

export class FaultStore {
  private readonly key: string;
  constructor(private readonly redis: RedisClient, prefix: string) {
    this.key = `${prefix}:faults`;
  }

  async get(queue: QueueName): Promise<FaultSettings> {
    const raw = await this.redis.hget(this.key, queue);
    return raw ? { ...NO_FAULTS, ...(JSON.parse(raw) as Partial<FaultSettings>) } : { ...NO_FAULTS };
  }

  async getAll(queues: readonly QueueName[]): Promise<Record<string, FaultSettings>> {
    const raw = await this.redis.hgetall(this.key);
    return Object.fromEntries(
      queues.map((q) => [q, raw[q] ? { ...NO_FAULTS, ...(JSON.parse(raw[q]) as Partial<FaultSettings>) } : { ...NO_FAULTS }]),
    );
  }

  /** Merges the given fields into the stored settings and returns the result. */
  async update(queue: QueueName, patch: Partial<FaultSettings>): Promise<FaultSettings> {
    const next = { ...(await this.get(queue)), ...patch };
    await this.redis.hset(this.key, queue, JSON.stringify(next));
    return next;
  }
}

/** Worker-side view: refreshed in the background so the hot path reads memory only. */
export class CachedFaults {
  private values: Record<string, FaultSettings> = {};
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly store: FaultStore, private readonly queues: readonly QueueName[], private readonly refreshMs = 1000) {}

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  get(queue: QueueName): FaultSettings {
    return this.values[queue] ?? NO_FAULTS;
  }

  private async refresh(): Promise<void> {
    try {
      this.values = await this.store.getAll(this.queues);
    } catch {
      // Redis unavailable: keep the last known settings; the worker's own connection handling reports the outage.
    }
  }
}
