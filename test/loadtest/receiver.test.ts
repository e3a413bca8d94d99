/**
 * The stack's webhook receiver (load and demo target): signature verified with the worker's signing scheme,
 * injected 429/503 and latency, /healthz, settings validated; and the compiled binary starts from its env.
 */
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { createReceiver, receiverSettings, type ReceiverSettings } from '../../services/webhook-receiver/main';
import { signWebhook } from '../../services/worker/webhook/signature';
import { ROOT } from '../helpers/services';
import { freePort } from '../helpers/ports';

const SECRET = 'receiver-test-secret-0123456789';

async function start(t: Test, over: Partial<ReceiverSettings> = {}, random?: () => number) {
  const settings: ReceiverSettings = { host: '127.0.0.1', port: 0, secret: SECRET, failureRate: 0, rateLimitRate: 0, latencyMs: 0, ...over };
  const r = createReceiver(settings, random);
  await new Promise<void>((resolve) => r.server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => r.server.close(() => resolve())));
  const url = `http://127.0.0.1:${(r.server.address() as AddressInfo).port}`;
  const post = (body: string, headers: Record<string, string> = {}) =>
    fetch(`${url}/hooks`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
  const signed = (body: string, ts = Math.floor(Date.now() / 1000)) => post(body, { 'webhook-signature': signWebhook(SECRET, body, ts) });
  return { url, counts: r.counts, post, signed };
}

t.test('verifies Webhook-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, t.body)>', async (t) => {
  const r = await start(t);
  const body = JSON.stringify({ event: 'load.test', n: 1 });
  t.equal((await r.signed(body)).status, 204, 'valid signature → 204');
  t.equal((await r.post(body)).status, 401, 'missing signature → 401');
  t.equal((await r.post(body, { 'webhook-signature': signWebhook('another-secret-0123456789', body, Math.floor(Date.now() / 1000)) })).status, 401, 'wrong secret → 401');
  const ts = Math.floor(Date.now() / 1000);
  t.equal((await r.post(body + ' ', { 'webhook-signature': signWebhook(SECRET, body, ts) })).status, 401, 'body changed after signing → 401');
  t.equal((await r.signed(body, ts - 3600)).status, 401, 'an hour-old timestamp (replay) → 401');
  const health = await (await fetch(`${r.url}/healthz`)).json();
  t.match(health, { status: 'ok', received: 5, accepted: 1, badSignature: 4 });
  t.equal((await fetch(`${r.url}/hooks`)).status, 405, 'GET on a hook path → 405');
});

t.test('without a secret every POST is accepted; oversized bodies are refused', async (t) => {
  const r = await start(t, { secret: '' });
  t.equal((await r.post('{}')).status, 204);
  t.equal((await r.post('x'.repeat(1024 * 1024 + 1))).status, 413);
});

t.test('injected 429 (with Retry-After), 503 and latency for demos', async (t) => {
  const limited = await start(t, { rateLimitRate: 1 });
  const res = await limited.signed('{}');
  t.equal(res.status, 429);
  t.equal(res.headers.get('retry-after'), '1');
  const failing = await start(t, { failureRate: 1 });
  t.equal((await failing.signed('{}')).status, 503);
  // Ratios: with a deterministic random sequence, 3 of 10 answers fail.
  let i = 0;
  const seq = await start(t, { failureRate: 0.3 }, () => [0.9, 0.1, 0.9, 0.5, 0.9, 0.2, 0.9, 0.8, 0.9, 0.6, 0.9, 0.25, 0.9, 0.7, 0.9, 0.9, 0.9, 0.4, 0.9, 0.95][i++ % 20]!);
  const statuses: number[] = [];
  for (let n = 0; n < 10; n++) statuses.push((await seq.signed(`{"n":${n}}`)).status);
  t.equal(statuses.filter((s) => s === 503).length, 3, `3 of 10 failed: ${statuses.join(',')}`);
  const slow = await start(t, { latencyMs: 150 });
  const t0 = performance.now();
  t.equal((await slow.signed('{}')).status, 204);
  t.ok(performance.now() - t0 >= 140, 'answer delayed by RECEIVER_LATENCY_MS');
});

t.test('settings from the environment, validated', async (t) => {
  t.match(receiverSettings({}), { host: '127.0.0.1', port: 8099, secret: '', failureRate: 0, rateLimitRate: 0, latencyMs: 0 });
  t.match(receiverSettings({ RECEIVER_HOST: '0.0.0.0', RECEIVER_PORT: '9000', WEBHOOK_SIGNING_SECRET: 's', RECEIVER_FAILURE_RATE: '0.5', RECEIVER_RATE_LIMIT_RATE: '0.1', RECEIVER_LATENCY_MS: '20' }), {
    host: '0.0.0.0',
    port: 9000,
    secret: 's',
    failureRate: 0.5,
    rateLimitRate: 0.1,
    latencyMs: 20,
  });
  t.throws(() => receiverSettings({ RECEIVER_FAILURE_RATE: '1.5' }), /RECEIVER_FAILURE_RATE must be a number between 0 and 1/);
  t.throws(() => receiverSettings({ RECEIVER_PORT: 'abc' }), /RECEIVER_PORT/);
  t.throws(() => receiverSettings({ RECEIVER_PORT: '80.5' }), /RECEIVER_PORT must be an integer/);
});

t.test('the compiled receiver starts from its env and exits cleanly on SIGTERM; bad env → exit 1 with a message', async (t) => {
  const port = await freePort();
  const child = spawn(process.execPath, ['dist/services/webhook-receiver/main.js'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', RECEIVER_PORT: String(port), WEBHOOK_SIGNING_SECRET: SECRET },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve(d.toString()));
    child.once('exit', () => reject(new Error('receiver exited early')));
  });
  t.match(JSON.parse(line), { msg: 'webhook receiver listening', port, verifying: true });
  const body = '{"a":1}';
  const res = await fetch(`http://127.0.0.1:${port}/hooks`, { method: 'POST', body, headers: { 'webhook-signature': signWebhook(SECRET, body, Math.floor(Date.now() / 1000)) } });
  t.equal(res.status, 204);
  child.kill('SIGTERM');
  t.equal(await exited, 0);
  const bad = spawn(process.execPath, ['dist/services/webhook-receiver/main.js'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', RECEIVER_RATE_LIMIT_RATE: '2' } });
  let stderr = '';
  bad.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => bad.on('exit', resolve));
  t.equal(code, 1);
  t.match(stderr, /RECEIVER_RATE_LIMIT_RATE must be a number between 0 and 1/);
});
