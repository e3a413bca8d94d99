/**
 * The campaign's webhook target: records every delivery (the `webhook-id` header and the intent the client put in
 * the payload) with the time it arrived, answers 204 — or, while a `webhook_hang` fault is on, accepts the
 * request and never answers it (the worker's headers timeout gives up on it). Only answered deliveries count as
 * delivered. Loopback only; part of the ground truth the checker reads.
 */
import http from 'node:http';
import type net from 'node:net';

export interface Delivery {
  intent: string;
  deliveryId: string;
  atMs: number;
}

export interface RecordingReceiver {
  url: string;
  deliveries: Delivery[];
  /** Requests that arrived while hanging and were never answered. */
  hung(): number;
  setHanging(on: boolean): void;
  close(): Promise<void>;
}

export async function startRecordingReceiver(): Promise<RecordingReceiver> {
  const deliveries: Delivery[] = [];
  const sockets = new Set<net.Socket>();
  let hanging = false;
  let hungCount = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (hanging) {
        hungCount++;
        return; // never answered: the connection stays open until the client gives up
      }
      let intent: unknown;
      try {
        intent = (JSON.parse(Buffer.concat(chunks).toString()) as { intent?: unknown }).intent;
      } catch {
        intent = undefined;
      }
      deliveries.push({ intent: typeof intent === 'string' ? intent : '', deliveryId: String(req.headers['webhook-id'] ?? ''), atMs: Date.now() });
      res.writeHead(204).end();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    deliveries,
    hung: () => hungCount,
    setHanging: (on) => (hanging = on),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
