/**
 * A webhook receiver for demos and load tests: accepts POST on any path, verifies Webhook-Signature when a
 * secret is set (401 on a missing or bad one, 413 over 1 MiB), answers 204. Optional latency, failure (503) and
 * 429 ratios let a demo exercise timeouts, retries and the worker's rate limiter. GET /healthz answers 200 with
 * the counts. Standalone tool: its settings are parsed here, in one function, not by services/common/config.ts.
 *
 *   RECEIVER_HOST (127.0.0.1)  RECEIVER_PORT (8099)  WEBHOOK_SIGNING_SECRET (unset: no verification)
 *   RECEIVER_LATENCY_MS (0)  RECEIVER_FAILURE_RATE (0..1)  RECEIVER_RATE_LIMIT_RATE (0..1)
 */
import http from 'node:http';
import { verifyWebhook } from '../worker/webhook/signature';

export interface ReceiverSettings {
  host: string;
  port: number;
  secret: string;
  failureRate: number;
  rateLimitRate: number;
  latencyMs: number;
}

const MAX_BODY_BYTES = 1024 * 1024;

export function receiverSettings(env: NodeJS.ProcessEnv): ReceiverSettings {
  const num = (name: string, def: number, max = Infinity) => {
    const v = env[name] === undefined || env[name] === '' ? def : Number(env[name]);
    if (!Number.isFinite(v) || v < 0 || v > max) throw new Error(`${name} must be a number between 0 and ${max}`);
    return v;
  };
  const port = num('RECEIVER_PORT', 8099, 65535);
  if (!Number.isInteger(port)) throw new Error('RECEIVER_PORT must be an integer port number');
  return {
    host: env.RECEIVER_HOST || '127.0.0.1',
    port,
    secret: env.WEBHOOK_SIGNING_SECRET ?? '',
    failureRate: num('RECEIVER_FAILURE_RATE', 0, 1),
    rateLimitRate: num('RECEIVER_RATE_LIMIT_RATE', 0, 1),
    latencyMs: num('RECEIVER_LATENCY_MS', 0, 60_000),
  };
}

export function createReceiver(s: ReceiverSettings, random: () => number = Math.random) {
  const counts = { received: 0, accepted: 0, badSignature: 0, failed: 0, rateLimited: 0 };
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/healthz') {
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok', ...counts }));
    }
    if (req.method !== 'POST') return void res.writeHead(405, { allow: 'POST' }).end();
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY_BYTES) chunks.push(c);
    });
    req.on('end', () => {
      counts.received++;
      if (size > MAX_BODY_BYTES) return void res.writeHead(413).end();
      const body = Buffer.concat(chunks).toString();
      if (s.secret && !verifyWebhook(s.secret, body, req.headers['webhook-signature'] as string | undefined)) {
        counts.badSignature++;
        return void res.writeHead(401).end();
      }
      const answer = () => {
        if (random() < s.rateLimitRate) {
          counts.rateLimited++;
          return void res.writeHead(429, { 'retry-after': '1' }).end();
        }
        if (random() < s.failureRate) {
          counts.failed++;
          return void res.writeHead(503).end();
        }
        counts.accepted++;
        res.writeHead(204).end();
      };
      if (s.latencyMs > 0) setTimeout(answer, s.latencyMs);
      else answer();
    });
  });
  server.keepAliveTimeout = 30_000;
  return { server, counts };
}

if (require.main === module) {
  let settings: ReceiverSettings;
  try {
    settings = receiverSettings(process.env);
  } catch (err) {
    process.stderr.write(`webhook receiver: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const { server } = createReceiver(settings);
  server.listen(settings.port, settings.host, () => {
    process.stdout.write(JSON.stringify({ msg: 'webhook receiver listening', host: settings.host, port: settings.port, verifying: !!settings.secret }) + '\n');
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
