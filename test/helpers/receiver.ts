/** A local webhook receiver: records each delivery, verifies its signature, answers from a script. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyWebhook } from '../../services/worker/webhook/signature';
import { SIGNING_SECRET } from './services';

export interface Delivery {
  body: string;
  headers: http.IncomingHttpHeaders;
  signatureValid: boolean;
  status: number;
}

export interface Receiver {
  url: string;
  deliveries: Delivery[];
  /** Status (and headers) to answer for the next deliveries, in order; 200 once the script runs out. */
  script: { status: number; headers?: Record<string, string>; hangMs?: number }[];
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const receiver: Receiver = { url: '', deliveries: [], script: [], close: async () => undefined };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      const step = receiver.script.shift() ?? { status: 200 };
      receiver.deliveries.push({
        body,
        headers: req.headers,
        signatureValid: verifyWebhook(SIGNING_SECRET, body, req.headers['webhook-signature'] as string | undefined),
        status: step.status,
      });
      const answer = () => res.writeHead(step.status, step.headers ?? {}).end('{}');
      if (step.hangMs) setTimeout(answer, step.hangMs).unref();
      else answer();
    });
  });
  Object.assign(receiver, await serveOnLoopback(server));
  return receiver;
}

/** Listens on a free loopback port; `url` is its /hooks endpoint, `close` also drops open (hanging) connections. */
export async function serveOnLoopback(server: http.Server): Promise<{ url: string; close(): Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** One request to a target that never answers: when it arrived, when its connection closed, whether it was answered. */
export interface HangingRequest {
  arrivedAt: number;
  closedAt?: number;
  answered: boolean;
}

/** A webhook target that never answers on its own: only the client (its abort signal, its timeouts) ends an exchange. */
export async function startHangingTarget(): Promise<{ url: string; seen: HangingRequest[]; close(): Promise<void> }> {
  const seen: HangingRequest[] = [];
  const server = http.createServer((req, res) => {
    const entry: HangingRequest = { arrivedAt: Date.now(), answered: false };
    seen.push(entry);
    req.resume();
    res.on('close', () => {
      entry.closedAt = Date.now();
      entry.answered = res.writableEnded;
    });
  });
  return { seen, ...(await serveOnLoopback(server)) };
}
