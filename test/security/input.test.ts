/**
 * Hostile input against the real API process. Fuzzed bodies (seeded, reproducible: each a valid
 * body with one mutation that makes it invalid, or broken JSON) → 400 with the error shape, naming the field;
 * oversize → 413; no key / wrong key → 401; and nothing is enqueued by any of them.
 */
import t from 'tap';
import net from 'node:net';
import { baseEnv, startApi, API_KEY } from '../helpers/services';
import { deletePrefix, SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis';
import { call } from '../helpers/http';
import { pool, redisClient } from '../fault/lib';

const SEED = Number(process.env.FUZZ_SEED ?? 20261123);
const CASES = 400;

function mulberry32(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const VALID: Record<string, Record<string, unknown>> = {
  payments: { amount: 1250, currency: 'EUR', account: 'acct_1', reference: 'inv-1' },
  notifications: { channel: 'sms', to: '+15550100', template: 'otp', variables: { code: '1234' } },
  webhooks: { url: 'https://example.com/hook', event: 'invoice.paid', payload: { id: 1 } },
};
/** Values each field must refuse. */
const BAD: Record<string, Record<string, unknown[]>> = {
  payments: {
    amount: ['100', -1, 0, 1.5, null, {}, [], true, Number('1e400') === Infinity ? 'Infinity' : 0],
    currency: ['eur', 'EURO', '', 12, null, 'E1R'],
    account: ['', 5, null, {}, 'x'.repeat(129)],
    reference: ['', 7, 'y'.repeat(129), []],
  },
  notifications: {
    channel: ['fax', '', 1, null, ['sms']],
    to: ['', 3, 'a'.repeat(321), null],
    template: ['', 1, null, 't'.repeat(129)],
    variables: ['str', 1, [], null],
  },
  webhooks: {
    url: ['ftp://example.com/x', 'not a url', '', 1, 'javascript:alert(1)', null],
    event: ['', 1, 'e'.repeat(129)],
    payload: ['x', 1, [], null],
  },
};
const REQUIRED: Record<string, string[]> = {
  payments: ['amount', 'currency', 'account'],
  notifications: ['channel', 'to', 'template'],
  webhooks: ['url', 'event', 'payload'],
};

interface Case {
  queue: string;
  kind: string;
  body: string;
  /** Text the message must contain (the field it names), if any. */
  names?: string;
}

function generate(random: () => number): Case[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const queues = Object.keys(VALID);
  const cases: Case[] = [];
  for (let i = 0; i < CASES; i++) {
    const queue = pick(queues);
    const data = structuredClone(VALID[queue]!);
    const body: Record<string, unknown> = { data };
    const kind = pick(['bad-value', 'missing', 'unknown-field', 'unknown-top', 'top-type', 'no-data', 'priority', 'delay', 'broken-json', 'proto']);
    let names: string | undefined;
    let text: string | undefined;
    switch (kind) {
      case 'bad-value': {
        const field = pick(Object.keys(BAD[queue]!));
        data[field] = pick(BAD[queue]![field]!);
        names = `body.data.${field}`;
        break;
      }
      case 'missing': {
        const field = pick(REQUIRED[queue]!);
        delete data[field];
        names = `"${field}"`;
        break;
      }
      case 'unknown-field': {
        const field = `x_${Math.floor(random() * 1e6)}`;
        data[field] = pick([1, 'v', null, {}, []]);
        names = `"${field}"`;
        break;
      }
      case 'unknown-top':
        body.extra = 1;
        names = '"extra"';
        break;
      case 'top-type':
        text = JSON.stringify(pick([[], 'data', 42, null, true, [body]]));
        break;
      case 'no-data':
        delete body.data;
        body[pick(['payload', 'Data', 'job'])] = data;
        break;
      case 'priority':
        body.priority = pick(['urgent', 1, '', 'CRITICAL', null]);
        names = 'body.priority';
        break;
      case 'delay':
        body.delayMs = pick([-1, 1.5, '10', 7 * 24 * 3600 * 1000 + 1, null]);
        names = 'body.delayMs';
        break;
      case 'broken-json': {
        const valid = JSON.stringify(body);
        text = pick([
          valid.slice(0, 1 + Math.floor(random() * (valid.length - 2))),
          valid.replace(/"/, "'"),
          `${valid},`,
          '{"data":',
          String.fromCharCode(...Array.from({ length: 1 + Math.floor(random() * 40) }, () => 32 + Math.floor(random() * 95))),
        ]);
        // A random printable string can (rarely) be valid JSON of the wrong type: still a 400, fine.
        break;
      }
      case 'proto':
        text = JSON.stringify(body).replace('{"data":{', '{"data":{"__proto__":{"polluted":true},');
        break;
    }
    cases.push({ queue, kind, body: text ?? JSON.stringify(body), names });
  }
  return cases;
}

/**
 * A POST over a raw socket: the server answers 413 and closes while the client is still writing, which an HTTP
 * client reports as EPIPE instead of the response. Returns the status and the parsed JSON body.
 */
function rawPost(port: number, headers: Record<string, string>, parts: string[]): Promise<{ status: number; body: any }> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let raw = '';
    sock.on('data', (c: Buffer) => (raw += c.toString()));
    sock.on('error', () => undefined); // EPIPE/ECONNRESET once the server has refused the body
    sock.on('close', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1]);
      const text = raw.slice(raw.indexOf('\r\n\r\n') + 4);
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        /* not JSON */
      }
      resolve({ status, body });
    });
    sock.setTimeout(10_000, () => sock.destroy());
    const head = Object.entries({ host: '127.0.0.1', authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json', connection: 'close', ...headers })
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    sock.write(`POST /v1/queues/notifications/jobs HTTP/1.1\r\n${head}\r\n`);
    for (const part of parts) if (!sock.destroyed) sock.write(part);
  });
}

t.test('fuzzed bodies → 400 with the error shape; oversize → 413; no/wrong key → 401; nothing enqueued', async (t) => {
  const prefix = uniquePrefix('fuzz');
  t.teardown(() => deletePrefix(SHARED_REDIS_URL, prefix));
  const api = await startApi(baseEnv(SHARED_REDIS_URL, prefix, { API_RATE_LIMIT_MAX: '0' }));
  t.teardown(() => api.stop('SIGKILL'));
  const redis = redisClient(t, SHARED_REDIS_URL);

  const cases = generate(mulberry32(SEED));
  // Each with its own Idempotency-Key (payments require one), so the body alone decides the answer.
  const results = await pool(cases, 16, async (c, i) => ({ c, res: await call('POST', `${api.url}/v1/queues/${c.queue}/jobs`, c.body, { 'idempotency-key': `fuzz-${i}` }) }));
  const wrongStatus = results.filter(({ res }) => res.status !== 400);
  const badShape = results.filter(
    ({ res }) =>
      typeof res.body !== 'object' || res.body === null ||
      res.body.statusCode !== 400 || res.body.error !== 'Bad Request' || typeof res.body.code !== 'string' || typeof res.body.message !== 'string',
  );
  const unnamed = results.filter(({ c, res }) => c.names && !String(res.body?.message).includes(c.names));
  t.same(wrongStatus.map(({ c, res }) => `${c.kind} ${c.queue} ${c.body.slice(0, 80)} → ${res.status}`), [], `all ${CASES} fuzzed bodies → 400`);
  t.same(badShape.map(({ c }) => `${c.kind} ${c.body.slice(0, 80)}`), [], 'every 400 has { statusCode, code, error, message }');
  t.same(unnamed.map(({ c, res }) => `${c.kind}: wanted ${c.names} in "${res.body?.message}"`), [], 'schema errors name the field');
  const kinds = Object.entries(results.reduce<Record<string, number>>((acc, { c }) => ({ ...acc, [c.kind]: (acc[c.kind] ?? 0) + 1 }), {}));

  // Oversize: just over the 64 KiB limit, with and without a Content-Length.
  const big = JSON.stringify({ data: { channel: 'email', to: 'a@example.com', template: 't', variables: { blob: 'x'.repeat(65 * 1024) } } });
  const withLength = await rawPost(api.port!, { 'content-length': String(Buffer.byteLength(big)) }, [big]);
  t.equal(withLength.status, 413, 'oversize body → 413');
  t.match(withLength.body, { statusCode: 413, code: 'PAYLOAD_TOO_LARGE', error: 'Payload Too Large' });
  const chunks = Array.from({ length: 70 }, (_, i) => (i === 0 ? big.slice(0, 1024) : 'x'.repeat(1024)));
  const chunked = await rawPost(api.port!, { 'transfer-encoding': 'chunked' }, [...chunks.map((c) => `${c.length.toString(16)}\r\n${c}\r\n`), '0\r\n\r\n']);
  t.equal(chunked.status, 413, 'oversize chunked body (no Content-Length) → 413');
  t.match(chunked.body, { code: 'PAYLOAD_TOO_LARGE' });

  // Auth: a valid body without a usable key.
  const valid = { data: VALID.payments };
  const authCases: [string, Record<string, string>][] = [
    ['no header', { authorization: '' }],
    ['wrong key', { authorization: 'Bearer wrong-key-0123456789' }],
    ['key prefix', { authorization: `Bearer ${API_KEY.slice(0, -1)}` }],
    ['key + suffix', { authorization: `Bearer ${API_KEY}x` }],
    ['basic scheme', { authorization: `Basic ${Buffer.from(`user:${API_KEY}`).toString('base64')}` }],
    ['empty bearer', { authorization: 'Bearer ' }],
  ];
  for (const [name, headers] of authCases) {
    const res = await call('POST', `${api.url}/v1/queues/payments/jobs`, valid, { 'idempotency-key': 'auth-case', ...headers });
    t.equal(res.status, 401, `${name} → 401`);
    t.match(res.body, { statusCode: 401, code: 'UNAUTHORIZED', error: 'Unauthorized' });
    t.equal(res.headers['www-authenticate'], 'Bearer', 'WWW-Authenticate: Bearer');
  }
  const noKeyGet = await call('GET', `${api.url}/v1/queues/payments/jobs/1`, undefined, { authorization: '' });
  t.equal(noKeyGet.status, 401, 'job reads need a key too');
  const noKeyFaults = await call('PUT', `${api.url}/v1/admin/faults/payments`, { failureRate: 1 }, { authorization: '' });
  t.equal(noKeyFaults.status, 401, 'fault injection needs a key');

  // Nothing enqueued: no job, id counter or event stream under the prefix.
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  // BullMQ writes each queue's <queue>:meta (version) when the API's Queue objects connect, and the wrong keys
  // are counted against the client address (services/api/failed-auth.ts): neither is a job.
  const written = keys.filter((k) => !/:(payments|notifications|webhooks):meta$|:api-auth-failures:/.test(k));
  t.ok(keys.some((k) => k.endsWith(':api-auth-failures:127.0.0.1')), 'the wrong keys were counted against the address');
  const logText = JSON.stringify(api.logs) + api.stderr.join('');
  t.notOk(logText.includes(API_KEY) || logText.includes('wrong-key-0123456789'), 'no bearer key (valid or not) in the API log');
  t.same(written, [], 'no job, id counter or event under the prefix (only the queues\' meta keys)');
  t.comment(
    `seed ${SEED}: ${CASES} fuzzed bodies (${kinds.map(([k, n]) => `${k} ${n}`).join(', ')}) → ${CASES - wrongStatus.length} × 400 with the error shape; ` +
      `oversize → ${withLength.status} / chunked ${chunked.status}; ${authCases.length} bad-auth variants → 401; ${written.length} job keys written`,
  );
});

t.test('an unauthenticated request is refused before its body is read (401 whatever the body)', async (t) => {
  const prefix = uniquePrefix('fuzz-auth');
  t.teardown(() => deletePrefix(SHARED_REDIS_URL, prefix));
  const api = await startApi(baseEnv(SHARED_REDIS_URL, prefix, { API_RATE_LIMIT_MAX: '0' }));
  t.teardown(() => api.stop('SIGKILL'));
  const bodies: [string, string][] = [
    ['schema-invalid body', JSON.stringify({ data: { amount: 'x' } })],
    ['broken JSON', '{"data":'],
    ['__proto__ body', '{"__proto__":{"polluted":true},"data":{}}'],
  ];
  const statuses: string[] = [];
  for (const [name, body] of bodies) {
    const res = await call('POST', `${api.url}/v1/queues/payments/jobs`, body, { authorization: '', 'idempotency-key': 'anon' });
    statuses.push(`${name} → ${res.status}`);
    t.equal(res.status, 401, `no key + ${name} → 401 (not parsed for an anonymous client)`);
  }
  t.comment(`no key: ${statuses.join(', ')}`);
});
