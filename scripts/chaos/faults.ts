/**
 * Runs a fault schedule (schedule.ts) against the campaign's processes, Redis and targets: each lane one fault at
 * a time, at its offset, healed after its duration. Every fault records when it started and when it was healed
 * (the restart ready, SIGCONT sent, link up, fault settings cleared): recovery is measured from the heal.
 * Only loopback processes and the campaign's own namespace are ever touched.
 */
import type { ServiceInstance } from './services';
import type { CampaignRedis } from './topology';
import type { RecordingReceiver } from './receiver';
import type { FaultKind, ScheduledFault } from './schedule';
import { delay } from '../lib/wait';

export interface FaultRecord {
  kind: FaultKind;
  target: string;
  plannedAtS: number;
  /** ms since the load started */
  startedMs: number;
  healedMs?: number;
  error?: string;
  /**
   * Not injected: its lane was still busy with earlier faults when the load ended (a slow, loaded machine), or
   * its precondition did not hold (a cluster failover whose master has no replica in sync): see skipReason.
   */
  skipped?: boolean;
  skipReason?: string;
}

/**
 * Thrown by a fault that must not be injected now (its precondition does not hold, e.g. no replica in sync to
 * fail over to): recorded as skipped with the reason, not as an error.
 */
export class FaultSkipped extends Error {
  override name = 'FaultSkipped';
}

export const LANE_BUSY = 'lane busy past the load';

export interface FaultTargets {
  redis: CampaignRedis;
  apis: ServiceInstance[];
  workers: ServiceInstance[];
  receiver: RecordingReceiver;
  adminKey: string;
  /** Called right before a worker is SIGKILLed: the campaign reads its counters while it can still answer. */
  beforeWorkerKill(worker: ServiceInstance): Promise<void>;
  log(line: string): void;
}

/** PUT /v1/admin/faults/:queue on whichever API answers, retried for up to `forMs` (an API may be down or Redis frozen). */
export async function setProviderFaults(t: Pick<FaultTargets, 'apis' | 'adminKey'>, queue: string, patch: Record<string, number>, forMs = 60_000): Promise<void> {
  const until = Date.now() + forMs;
  let last = '';
  for (let i = 0; Date.now() < until; i++) {
    const api = t.apis[i % t.apis.length]!;
    try {
      const res = await fetch(`http://127.0.0.1:${api.port}/v1/admin/faults/${queue}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${t.adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(patch),
        signal: AbortSignal.timeout(2_000),
      });
      if (res.ok) return;
      last = `${res.status} ${await res.text()}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await delay(250);
  }
  throw new Error(`could not set ${queue} faults ${JSON.stringify(patch)}: ${last}`);
}

async function apply(f: ScheduledFault, t: FaultTargets, heal: () => void): Promise<void> {
  const ms = f.durationS * 1_000;
  switch (f.kind) {
    case 'worker_kill':
    case 'api_kill': {
      const svc = (f.kind === 'worker_kill' ? t.workers : t.apis)[Number(f.target)]!;
      if (f.kind === 'worker_kill') await t.beforeWorkerKill(svc);
      await svc.kill();
      await delay(ms);
      await svc.restart();
      return heal();
    }
    case 'redis_freeze':
      await t.redis.freeze(ms);
      return heal();
    case 'redis_failover':
      await t.redis.failover(ms);
      return heal();
    case 'partition':
      await t.redis.partition(ms);
      return heal();
    case 'provider_outage':
    case 'provider_429': {
      const field = f.kind === 'provider_outage' ? 'failureRate' : 'rateLimitRate';
      await setProviderFaults(t, f.target, { [field]: 1 });
      try {
        await delay(ms);
      } finally {
        await setProviderFaults(t, f.target, { [field]: 0 });
      }
      return heal();
    }
    case 'webhook_hang':
      t.receiver.setHanging(true);
      try {
        await delay(ms);
      } finally {
        t.receiver.setHanging(false);
      }
      return heal();
  }
}

const LANE_OF: Record<FaultKind, string> = {
  worker_kill: 'process', api_kill: 'process',
  redis_freeze: 'redis', redis_failover: 'redis', partition: 'redis',
  provider_outage: 'provider', provider_429: 'provider',
  webhook_hang: 'webhook',
};

/**
 * Runs every lane of the schedule; resolves when all faults are healed. A fault that cannot be applied is
 * recorded with its error (and the campaign fails on it): a chaos run whose faults silently did nothing proves
 * nothing.
 */
export async function runFaults(
  schedule: readonly ScheduledFault[], t: FaultTargets, startMs: number, signal: AbortSignal, lastStartMs: number,
): Promise<FaultRecord[]> {
  const records: FaultRecord[] = [];
  const lanes = new Map<string, ScheduledFault[]>();
  for (const f of schedule) lanes.set(LANE_OF[f.kind], [...(lanes.get(LANE_OF[f.kind]) ?? []), f]);
  await Promise.all(
    [...lanes.values()].map(async (faults) => {
      for (const f of faults) {
        const wait = startMs + f.atS * 1_000 - Date.now();
        if (wait > 0) await delay(wait, signal).catch(() => undefined);
        if (signal.aborted) return;
        const rec: FaultRecord = { kind: f.kind, target: f.target, plannedAtS: f.atS, startedMs: Date.now() - startMs };
        records.push(rec);
        if (rec.startedMs > lastStartMs) {
          rec.skipped = true;
          rec.skipReason = LANE_BUSY;
          t.log(`fault ${f.kind} planned at ${f.atS} s skipped: its lane was busy until after the load`);
          continue;
        }
        t.log(`fault ${f.kind} ${f.target} for ${f.durationS} s at ${(rec.startedMs / 1000).toFixed(1)} s`);
        try {
          await apply(f, t, () => (rec.healedMs = Date.now() - startMs));
        } catch (err) {
          if (err instanceof FaultSkipped) {
            rec.skipped = true;
            rec.skipReason = err.message;
            rec.healedMs ??= Date.now() - startMs;
            t.log(`fault ${f.kind} skipped: ${err.message}`);
            continue;
          }
          rec.error = (err as Error).message;
          rec.healedMs ??= Date.now() - startMs;
          t.log(`fault ${f.kind} failed: ${rec.error}`);
        }
      }
    }),
  );
  return records.sort((a, b) => a.startedMs - b.startedMs);
}
