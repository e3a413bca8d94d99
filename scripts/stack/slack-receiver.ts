/**
 * A Slack-compatible incoming-webhook endpoint for machines without a Slack workspace: Alertmanager posts its
 * Slack messages here; they are kept for tests (`messages`) and handed to `onMessage` as they arrive (the CLI
 * prints them with `formatSlackMessage`).
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

export interface SlackReceiver {
  url: string;
  port: number;
  messages: SlackMessage[];
  close(): Promise<void>;
}

/** Slack mrkdwn to plain text: `<url|label>` → label, no `*bold*` stars or backticks. */
function plain(line: string): string {
  return line
    .replace(/<([^|>]+)\|([^>]+)>/g, '$2')
    .replace(/[*`]/g, '')
    .trim();
}

/**
 * A few terminal lines per message: channel and title, then each alert's summary and description (the link
 * lines — runbook, dashboard — are dropped; the full text is in Slack or `messages`).
 */
export function formatSlackMessage(msg: SlackMessage, maxLinesPerAttachment = 6): string {
  const out: string[] = [];
  const attachments = msg.attachments?.length ? msg.attachments : [{ title: msg.text ?? '', text: '' }];
  for (const a of attachments) {
    out.push(`slack ${msg.channel ?? ''}  ${plain(a.title ?? a.fallback ?? '')}`.replace(/ {3,}/, '  '));
    const lines = (a.text ?? '')
      .split('\n')
      .filter((l) => !/^\s*(<[^>]+>\s*(·\s*)?)+$/.test(l))
      .map(plain)
      .filter((l) => l && l !== 'Firing' && l !== 'Resolved');
    for (const l of lines.slice(0, maxLinesPerAttachment)) out.push(`    ${l.length > 160 ? `${l.slice(0, 159)}…` : l}`);
    if (lines.length > maxLinesPerAttachment) out.push(`    … ${lines.length - maxLinesPerAttachment} more lines`);
  }
  return out.join('\n');
}

export async function startSlackReceiver(port = 0, host = '127.0.0.1', onMessage?: (msg: SlackMessage) => void): Promise<SlackReceiver> {
  const messages: SlackMessage[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let msg: SlackMessage;
      try {
        msg = { ...(JSON.parse(Buffer.concat(chunks).toString()) as SlackMessage), receivedAt: Date.now() };
      } catch {
        res.writeHead(400).end('invalid_payload');
        return;
      }
      messages.push(msg);
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      onMessage?.(msg);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${actual}/slack`,
    port: actual,
    messages,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
