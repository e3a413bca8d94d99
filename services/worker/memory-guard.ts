/**
 * Worker memory limits (thresholds from observability/thresholds.yaml via config):
 * soft — warn and count once per crossing; hard — stop taking jobs, finish the active ones, exit so the
 * supervisor (compose restart policy, Kubernetes) starts a fresh process. Sampled every few seconds: RSS
 * cannot change faster than that matters.
 */
import type { Counter } from 'prom-client';

export interface MemoryGuardOptions {
  softLimitBytes: number;
  hardLimitBytes: number;
  intervalMs?: number;
  rss?: () => number;
  onSoft(rss: number): void;
  onHard(rss: number): void;
  events?: Counter<'level'>;
}

export function startMemoryGuard(opts: MemoryGuardOptions): () => void {
  const rss = opts.rss ?? (() => process.memoryUsage.rss());
  let softActive = false;
  let hardFired = false;
  const timer = setInterval(() => {
    const current = rss();
    if (opts.hardLimitBytes > 0 && current >= opts.hardLimitBytes && !hardFired) {
      hardFired = true;
      opts.events?.inc({ level: 'hard' });
      opts.onHard(current);
      return;
    }
    if (opts.softLimitBytes > 0 && current >= opts.softLimitBytes) {
      if (!softActive) {
        softActive = true;
        opts.events?.inc({ level: 'soft' });
        opts.onSoft(current);
      }
    } else {
      softActive = false;
    }
  }, opts.intervalMs ?? 5_000);
  timer.unref();
  return () => clearInterval(timer);
}
