/**
 * A Slack-compatible incoming-webhook endpoint for machines without a Slack workspace: Alertmanager posts its
 * Slack messages here; they are kept for tests and printed for people.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SlackMessage {
  channel?: string;
  username?: string;
  text?: string;
  attachments?: { title?: string; text?: string; color?: string; fallback?: string }[];
  receivedAt: number;
}

export async function startSlackReceiver(port = 0, host = '127.0.0.1', print = false) {
  const messages: SlackMessage[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        const msg = { ...(JSON.parse(Buffer.concat(chunks).toString()) as SlackMessage), receivedAt: Date.now() };
        messages.push(msg);
        if (print) {
          for (const a of msg.attachments ?? []) process.stdout.write(`\n[slack ${msg.channel ?? ''}] ${a.title ?? ''}\n${a.text ?? ''}\n`);
        }
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      } catch {
        res.writeHead(400).end('invalid_payload');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${actual}/slack`,
    port: actual,
    messages,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
