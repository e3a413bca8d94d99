/**
 * The metrics listener: its own port (METRICS_PORT), apart from the public API, so scrapes never compete with
 * client traffic for the API's rate limit or load shedding and /metrics is never exposed publicly. Given health
 * checks (health.ts), it also serves GET /livez and GET /readyz (200, or 503 with a JSON reason).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MetricsRegistry } from './registry';
import type { HealthChecks } from './health';

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

const json = (res: http.ServerResponse, status: number, body: object) =>
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(`${JSON.stringify(body)}\n`);

export async function startMetricsServer(registry: MetricsRegistry, host: string, port: number, health?: HealthChecks): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = req.url?.split('?', 1)[0];
    if (health && req.method === 'GET' && path === '/livez') {
      json(res, 200, { status: 'ok' });
      return;
    }
    if (health && req.method === 'GET' && path === '/readyz') {
      health
        .readiness()
        .then((r) => (r.ready ? json(res, 200, { status: 'ready' }) : json(res, 503, { status: 'not_ready', reason: r.reason })))
        .catch((err: Error) => json(res, 503, { status: 'not_ready', reason: err.message }));
      return;
    }
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    registry
      .metrics()
      .then((body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body))
      .catch((err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`));
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
