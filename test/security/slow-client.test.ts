/**
 * A slow client (slowloris: a header byte every 200 ms, so the connection is never idle) is cut
 * off at the request timeout (API_REQUEST_TIMEOUT_MS), and a client that sends nothing at the connection
 * timeout (API_CONNECTION_TIMEOUT_MS) — instead of holding a socket for as long as it likes.
 */
import net from 'node:net';
import t from 'tap';
import { baseEnv, startApi, API_KEY } from '../helpers/services';
import { deletePrefix, SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis';
import { call } from '../helpers/http';

const REQUEST_TIMEOUT_MS = 1000;
const CONNECTION_TIMEOUT_MS = 1500;
const GIVE_UP_MS = 12_000; // bound of the test itself: well past both timeouts

/** Dribbles `text` one byte per `everyMs`; resolves when the server closes the socket (or at the bound). */
function dribble(port: number, text: string, everyMs: number): Promise<{ closedAfterMs: number | undefined; response: string; sent: number }> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const start = performance.now();
    let response = '';
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    const done = (closed: boolean) => {
      clearInterval(timer);
      clearTimeout(bound);
      sock.destroy();
      resolve({ closedAfterMs: closed ? Math.round(performance.now() - start) : undefined, response, sent });
    };
    const bound = setTimeout(() => done(false), GIVE_UP_MS);
    sock.on('data', (c: Buffer) => (response += c.toString()));
    sock.on('close', () => done(true));
    sock.on('error', () => undefined);
    sock.on('connect', () => {
      if (everyMs === 0) return; // send nothing at all
      timer = setInterval(() => {
        if (sock.destroyed) return;
        sock.write(text[sent % text.length]!);
        sent++;
      }, everyMs);
    });
  });
}

t.test('a slow client is cut off at the request timeout', async (t) => {
  const prefix = uniquePrefix('slow');
  t.teardown(() => deletePrefix(SHARED_REDIS_URL, prefix));
  const api = await startApi(
    baseEnv(SHARED_REDIS_URL, prefix, {
      API_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
      API_CONNECTION_TIMEOUT_MS: String(CONNECTION_TIMEOUT_MS),
    }),
  );
  t.teardown(() => api.stop('SIGKILL'));

  // Never-ending headers: each byte resets the idle timer, so only the request timeout can end it.
  const headers = `POST /v1/queues/payments/jobs HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${API_KEY}\r\nx-padding: ${'a'.repeat(5000)}`;
  const [slow, silent] = await Promise.all([dribble(api.port!, headers, 200), dribble(api.port!, '', 0)]);

  t.ok(slow.closedAfterMs !== undefined, `slow client disconnected by the server (after ${slow.closedAfterMs ?? `> ${GIVE_UP_MS}`} ms, ${slow.sent} bytes sent)`);
  t.ok((slow.closedAfterMs ?? Infinity) < REQUEST_TIMEOUT_MS + 1000, `cut off within the request timeout (${REQUEST_TIMEOUT_MS} ms) + 1 s`);
  t.match(slow.response, /^HTTP\/1\.1 408/, 'answered 408 Request Timeout');
  t.ok(silent.closedAfterMs !== undefined && silent.closedAfterMs < CONNECTION_TIMEOUT_MS + 1000,
    `silent connection closed at the connection timeout (${silent.closedAfterMs ?? `> ${GIVE_UP_MS}`} ms, limit ${CONNECTION_TIMEOUT_MS} ms)`);
  t.equal((await call('GET', `${api.url}/healthz`)).status, 200, 'API still serving');
  t.comment(`slowloris (1 header byte / 200 ms): cut off after ${slow.closedAfterMs ?? `> ${GIVE_UP_MS}`} ms (request timeout ${REQUEST_TIMEOUT_MS} ms), response "${slow.response.split('\r\n')[0] ?? ''}"; silent connection closed after ${silent.closedAfterMs ?? `> ${GIVE_UP_MS}`} ms (connection timeout ${CONNECTION_TIMEOUT_MS} ms)`);
});
