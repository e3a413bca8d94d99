import t from 'tap';
import type { MinimalJob } from 'bullmq';
import { RETRY_BACKOFF_TYPE, retryBackoffStrategy, retryDelayMs } from '../../services/common/retry-backoff';
import { jobOptionsFor } from '../../services/common/job-options';
import { QUEUE_CATALOG, QUEUE_NAMES } from '../../services/common/queue-catalog';
import { JobTimeoutError, ProviderError } from '../../services/worker/errors';

t.test('delays double per attempt like BullMQ exponential, and a timeout waits timeoutBackoffFactor times as long', async (t) => {
  const base = { delay: 1_000, jitter: 0 };
  t.same([1, 2, 3].map((n) => retryDelayMs(n, base, false, 4)), [1_000, 2_000, 4_000]);
  t.same([1, 2, 3].map((n) => retryDelayMs(n, base, true, 4)), [4_000, 8_000, 16_000]);
});

t.test('jitter randomises the given share downwards, never above the undelayed maximum', async (t) => {
  const base = { delay: 1_000, jitter: 0.5 };
  t.equal(retryDelayMs(1, base, true, 4, () => 0), 2_000, 'lowest: half of 4 s');
  t.equal(retryDelayMs(1, base, true, 4, () => 0.999999), 3_999, 'highest: just under 4 s');
  t.equal(retryDelayMs(1, base, false, 4, () => 0.999999), 999);
});

t.test('the strategy reads delay and jitter from the job and the error from BullMQ', async (t) => {
  const strategy = retryBackoffStrategy({ timeoutBackoffFactor: 3 });
  const job = { opts: { backoff: { type: RETRY_BACKOFF_TYPE, delay: 500, jitter: 0 } } } as unknown as MinimalJob;
  t.equal(await strategy(2, RETRY_BACKOFF_TYPE, new ProviderError('503'), job), 1_000);
  t.equal(await strategy(2, RETRY_BACKOFF_TYPE, new JobTimeoutError(100), job), 3_000);
});

t.test('every queue enqueues with the timeout-aware type, its catalog delay and jitter, and a factor above 1', async (t) => {
  for (const q of QUEUE_NAMES) {
    const { policy } = QUEUE_CATALOG[q];
    t.same(jobOptionsFor(q).backoff, { type: RETRY_BACKOFF_TYPE, delay: policy.backoffDelayMs, jitter: policy.backoffJitter }, q);
    t.ok(policy.timeoutBackoffFactor > 1, `${q}: a timeout backs off longer than an error`);
    t.ok(policy.softTimeoutRatio > 0 && policy.softTimeoutRatio < 1, `${q}: soft timeout before the hard one`);
  }
});
