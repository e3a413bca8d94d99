/**
 * The real console in a real browser: Debian's Chromium (installed by scripts/setup.sh) driven by playwright-core
 * (which never downloads a browser), headless with the flags of a sandboxed root user, against a real API
 * process and a real worker process. An operator logs in with HTTP Basic, opens payments → failed, sees the job
 * this test made fail, clicks Retry after the fault is cleared, and sees the job completed; with the payment
 * provider's circuit open, the payments queue says so. Screenshots go to .tap/console/ (the test output directory;
 * docs/img/console-failed.png is one of them).
 */
import t from 'tap';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { chromium, type Browser } from 'playwright-core';
import { ADMIN_KEY, API_KEY, ROOT, baseEnv, startApi, startWorker } from '../helpers/services';
import { SHARED_REDIS_URL, assertionClient, deletePrefix, uniquePrefix } from '../helpers/redis';
import { CircuitStore } from '../../services/common/outbound-circuits';
import { OUTBOUND_POLICY } from '../../services/common/queue-catalog';
import { call, parseMetrics, valueOf } from '../helpers/http';
import { waitFor } from '../helpers/wait';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT_DIR = path.join(ROOT, '.tap', 'console');

async function launch(): Promise<Browser> {
  // playwright gives every launch a fresh temporary --user-data-dir; the rest is what a root user in a container
  // needs (no sandbox), and nothing that talks to the network on its own.
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
}

t.test('console in Chromium: log in, see a failed payment, retry it, see it completed', async (t) => {
  const prefix = uniquePrefix('console');
  const env = baseEnv(SHARED_REDIS_URL, prefix, { WORKER_QUEUES: 'payments' });
  const api = await startApi(env);
  const worker = await startWorker(env);
  const browser = await launch();
  t.teardown(async () => {
    await browser.close();
    await Promise.all([api.stop('SIGKILL'), worker.stop('SIGKILL')]);
    await deletePrefix(SHARED_REDIS_URL, prefix);
  });
  const admin = { authorization: `Bearer ${ADMIN_KEY}` };
  const job = async (id: string) => (await call('GET', `${api.url}/v1/queues/payments/jobs/${id}`)).body;
  const faults = async (failureRate: number) => {
    const res = await call('PUT', `${api.url}/v1/admin/faults/payments`, { failureRate }, admin);
    t.equal(res.status, 200, `payments failureRate=${failureRate}`);
    // Workers read fault settings every second.
    await new Promise((r) => setTimeout(r, 1_200));
  };

  await faults(1);
  const enqueued = await call('POST', `${api.url}/v1/queues/payments/jobs`, { data: { amount: 4200, currency: 'EUR', account: 'acct_console' } }, { 'idempotency-key': randomUUID() });
  t.equal(enqueued.status, 202);
  const id = enqueued.body.id as string;
  await waitFor(async () => (await job(id)).state === 'failed', { timeoutMs: 30_000, what: 'payment failed for good' });
  await faults(0);

  const context = await browser.newContext({ httpCredentials: { username: 'admin', password: ADMIN_KEY }, viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  const opened = await page.goto(`${api.url}/admin/queues`);
  t.equal(opened?.status(), 200, 'logged in with Basic admin:<admin key>');
  await page.getByRole('link', { name: 'payments' }).first().click();
  await page.getByText(/^failed/i).first().click();
  await page.waitForURL(/status=failed/);
  const card = page.locator('[class*="card-"]', { has: page.getByText(id, { exact: true }) });
  await card.waitFor({ timeout: 15_000 });
  t.ok(await card.getByText(/simulated provider: 503/).isVisible(), 'the failure reason is shown');
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'console-failed.png') });

  await card.locator('button:has(svg.lucide-refresh-cw)').click();
  const confirm = page.getByRole('button', { name: /^(confirm|retry)$/i });
  if (await confirm.isVisible().catch(() => false)) await confirm.click();
  await waitFor(async () => (await job(id)).state === 'completed', { timeoutMs: 20_000, what: 'retried job completed' });

  await page.goto(`${api.url}/admin/queues/queue/payments?status=completed`);
  await page.getByText(id, { exact: true }).waitFor({ timeout: 15_000 });
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'console-completed.png') });
  const done = await job(id);
  t.equal(done.state, 'completed', 'the job completed, same id');
  t.match(done.returnValue, { chargeId: /^ch_/ });
  t.equal(done.attemptsMade, 1, 'with a fresh set of attempts');

  const metrics = parseMetrics(await (await fetch(api.metricsUrl)).text());
  t.equal(valueOf(metrics, 'bullmq_jobs_replayed_total', { queue: 'payments' }), 1, 'the console retry counted as a replay');
  t.ok(api.logs.some((l) => l.audit === true && l.action === 'console_change' && typeof l.keyId === 'string'), 'audited with the key id');
  await context.close();
});

t.test('console in Chromium: an open payment_provider circuit is shown on the payments queue', async (t) => {
  const prefix = uniquePrefix('console');
  const api = await startApi(baseEnv(SHARED_REDIS_URL, prefix));
  const browser = await launch();
  const redis = assertionClient(SHARED_REDIS_URL, null);
  redis.on('error', () => undefined);
  t.teardown(async () => {
    await browser.close();
    await api.stop('SIGKILL');
    redis.disconnect();
    await deletePrefix(SHARED_REDIS_URL, prefix);
  });
  // What the workers' breaker records on five failed provider calls within its window.
  const opened = await new CircuitStore(redis, prefix, OUTBOUND_POLICY.breaker).record('payment_provider', 'payment_provider', 0, 5);
  t.equal(opened.state, 'open');

  const context = await browser.newContext({ httpCredentials: { username: 'admin', password: ADMIN_KEY }, viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${api.url}/admin/queues`);
  await page.getByText('⚠ payments · circuit open').first().waitFor({ timeout: 15_000 });
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'console-circuit-overview.png') });
  await page.goto(`${api.url}/admin/queues/queue/payments`);
  const note = page.getByText(/⚠ circuit open: payment_provider \(since \d\d:\d\d:\d\d UTC, half-open probe at \d\d:\d\d:\d\d UTC, 5 recent failures\)/);
  await note.waitFor({ timeout: 15_000 });
  t.ok(await note.isVisible(), 'the payments page shows the circuit, its next probe and its recent failures');
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'console-circuit-open.png') });
  await context.close();
});

t.test('console in Chromium: 401 without credentials, 403 with a client key', async (t) => {
  const prefix = uniquePrefix('console');
  const api = await startApi(baseEnv(SHARED_REDIS_URL, prefix));
  const browser = await launch();
  t.teardown(async () => {
    await browser.close();
    await api.stop('SIGKILL');
    await deletePrefix(SHARED_REDIS_URL, prefix);
  });

  // Headless Chromium has no login dialog: it reads the 401 and its challenge, then gives up the navigation.
  const page = await (await browser.newContext()).newPage();
  const challenged = page.waitForResponse(`${api.url}/admin/queues`);
  const navigation = await page.goto(`${api.url}/admin/queues`).then(() => 'rendered', (err: Error) => err.message);
  const res = await challenged;
  t.equal(res.status(), 401);
  t.equal(res.headers()['www-authenticate'], 'Basic realm="bullmq-console"', 'the browser is asked to log in');
  t.match(navigation, /ERR_INVALID_AUTH_CREDENTIALS/, 'and nothing of the console is shown');

  const client = await browser.newContext({ extraHTTPHeaders: { authorization: `Bearer ${API_KEY}` } });
  const forbidden = await (await client.newPage()).goto(`${api.url}/admin/queues`);
  t.equal(forbidden?.status(), 403);
  t.match(await forbidden?.text(), /FORBIDDEN/);

  const wrong = await browser.newContext({ httpCredentials: { username: 'admin', password: API_KEY } });
  t.equal((await (await wrong.newPage()).goto(`${api.url}/admin/queues`))?.status(), 403, 'a client key as Basic password: 403');
});
