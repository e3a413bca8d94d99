/** The failure classifier shared by worker metrics and the failures API, and the fingerprint's masking. */
import t from 'tap';
import { UnrecoverableError } from 'bullmq';
import { classifyFailure, failureReasonOf, storedFailureReason, STALLED_FAILURE_MESSAGE } from '../../services/common/failure-reason';
import { failureFingerprint, maskMessage } from '../../services/common/failure-fingerprint';
import { JobTimeoutError, ProviderError, RateLimitedError } from '../../services/worker/errors';

t.test('live errors and their stored form get the same reason', async (t) => {
  const cases: [Error, string][] = [
    [new JobTimeoutError(10_000), 'timeout'],
    [new ProviderError('simulated provider: 503 Service Unavailable', 503), 'provider_error'],
    [new UnrecoverableError('target answered 410; not retried'), 'rejected'],
    [new RateLimitedError(1000), 'rate_limited'],
    [new Error(STALLED_FAILURE_MESSAGE), 'stalled'],
    [new TypeError('cannot read properties of undefined'), 'other'],
  ];
  for (const [err, reason] of cases) {
    t.equal(failureReasonOf(err), reason, `${err.name} live`);
    // What BullMQ keeps: failedReason = message, stacktrace = [err.stack] (one per failed attempt, newest last).
    t.equal(storedFailureReason({ failedReason: err.message, stacktrace: ['Error: older attempt\n    at x', err.stack!] }), reason, `${err.name} stored`);
  }
  t.equal(storedFailureReason({ failedReason: STALLED_FAILURE_MESSAGE, stacktrace: [] }), 'stalled', 'stalled jobs have no stack');
  t.equal(storedFailureReason({ failedReason: 'x', stacktrace: null }), 'other');
  t.equal(classifyFailure('constructor', 'x'), 'other', 'no prototype keys');
});

t.test('masking: numbers, hex ids and UUIDs become placeholders', async (t) => {
  t.equal(maskMessage('timeout after 10000 ms on job 123'), 'timeout after <n> ms on job <n>');
  t.equal(
    maskMessage('charge ch_9f1c2a3b4d5e6f70 for 3f2a9c1e-1111-4222-8333-abcdef012345 failed'),
    'charge ch_<hex> for <uuid> failed',
  );
  t.equal(maskMessage('job idem-0a1b2c3d4e5f6a7b8c9d'), 'job idem-<hex>');
  t.equal(maskMessage('deadbeef   handler'), 'deadbeef handler', 'words without digits stay');
  t.ok(maskMessage('x'.repeat(5000)).length <= 500, 'long messages are cut');
});

t.test('fingerprint: same cause → same fingerprint; reason or wording changes it', async (t) => {
  const a = failureFingerprint('timeout', 'timeout after 10000 ms on job 123');
  t.match(a, /^[0-9a-f]{16}$/);
  t.equal(failureFingerprint('timeout', 'timeout after 10000 ms on job 456'), a, 'job ids masked');
  t.equal(failureFingerprint('timeout', 'timeout after 250 ms on job 12345678'), a, 'any number');
  t.not(failureFingerprint('provider_error', 'timeout after 10000 ms on job 123'), a, 'reason is part of it');
  t.not(failureFingerprint('timeout', 'deadline exceeded on job 123'), a, 'message is part of it');
});
