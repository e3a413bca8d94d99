/**
 * The campaign's client: a steady open-loop mix of payments, notifications and webhooks spread over the APIs,
 * with the habits of a correct production client — every request carries an Idempotency-Key, and a 503, a 429,
 * a timeout or a refused connection is retried with the same key (on the next API) until it is answered or the
 * client gives up. Every attempt and every answer goes into the history the checker reads (history.jsonl).
 */
import type { QueueName } from '../../services/common/queue-catalog';
import { delay } from '../lib/wait';

export interface Attempt {
  /** ms since the load started */
  tMs: number;
  intent: string;
  queue: QueueName;
  attempt: number;
  api: number;
  /** HTTP status, or 0 for no answer (timeout, connection refused/reset). */
  status: number;
  code?: string;
  error?: string;
  jobId?: string;
  replayed?: boolean;
  ms: number;
}

export interface Intent {
  intent: string;
  queue: QueueName;
  body: Record<string, unknown>;
  sentAtMs: number;
  /** Set once a 202 came back. */
  jobId?: string;
  acceptedAtMs?: number;
  /** Set when the client stopped trying: the last status or "gave_up". */
  refused?: string;
}

export interface LoadOptions {
  seed: number;
  apis: () => string[];
  apiKey: string;
  ratePerS: number;
  durationS: number;
  receiverUrl: string;
  /** A request without an answer after this long is abandoned and retried with the same key. */
  requestTimeoutMs?: number;
  /** The client stops retrying an intent after this long (it counts as refused, "gave_up"). */
  giveUpAfterMs?: number;
  onAttempt?: (a: Attempt) => void;
}

const MIX: QueueName[] = ['payments', 'payments', 'payments', 'payments', 'notifications', 'notifications', 'notifications', 'webhooks', 'webhooks', 'webhooks'];

export function intentBody(queue: QueueName, intent: string, n: number, receiverUrl: string): Record<string, unknown> {
  if (queue === 'payments') return { data: { amount: 100 + (n % 9_000), currency: 'EUR', account: `acct-${intent}`, reference: `ref-${intent}` } };
  if (queue === 'notifications') return { data: { channel: 'email', to: `u${n}@example.com`, template: 'welcome', variables: { intent } } };
  return { data: { url: receiverUrl, event: 'chaos.tick', payload: { intent } } };
}

export interface LoadRun {
  intents: Intent[];
  history: Attempt[];
  /** Resolves when every intent is answered or given up. */
  done: Promise<void>;
}

export function runLoad(o: LoadOptions): LoadRun {
  const intents: Intent[] = [];
  const history: Attempt[] = [];
  const start = Date.now();
  const requestTimeoutMs = o.requestTimeoutMs ?? 3_000;
  const giveUpAfterMs = o.giveUpAfterMs ?? 60_000;
  const inFlight: Promise<void>[] = [];

  const send = async (it: Intent, n: number) => {
    for (let attempt = 1; ; attempt++) {
      const apis = o.apis();
      const api = (n + attempt - 1) % apis.length;
      const t0 = Date.now();
      const record: Attempt = { tMs: t0 - start, intent: it.intent, queue: it.queue, attempt, api, status: 0, ms: 0 };
      let retryAfterMs = Math.min(200 * attempt, 2_000);
      try {
        const res = await fetch(`${apis[api]}/v1/queues/${it.queue}/jobs`, {
          method: 'POST',
          headers: { authorization: `Bearer ${o.apiKey}`, 'content-type': 'application/json', 'idempotency-key': it.intent },
          body: JSON.stringify(it.body),
          signal: AbortSignal.timeout(requestTimeoutMs),
        });
        record.status = res.status;
        const text = await res.text();
        let body: { id?: unknown; code?: unknown } = {};
        try {
          body = JSON.parse(text) as typeof body;
        } catch {
          body = {};
        }
        if (typeof body.code === 'string') record.code = body.code;
        if (res.status === 202) {
          record.jobId = String(body.id);
          record.replayed = res.headers.get('idempotent-replayed') === 'true';
        }
        const ra = Number(res.headers.get('retry-after'));
        if (Number.isFinite(ra) && ra > 0) retryAfterMs = Math.min(ra * 1_000, 5_000);
      } catch (err) {
        record.error = (err as Error).name === 'TimeoutError' ? 'timeout' : String((err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message);
      }
      record.ms = Date.now() - t0;
      history.push(record);
      o.onAttempt?.(record);
      if (record.status === 202) {
        it.jobId = record.jobId;
        it.acceptedAtMs = Date.now() - start;
        return;
      }
      const retryable = record.status === 0 || record.status === 429 || record.status >= 500;
      if (!retryable) {
        it.refused = `${record.status}${record.code ? ` ${record.code}` : ''}`;
        return;
      }
      if (Date.now() - (start + it.sentAtMs) > giveUpAfterMs) {
        it.refused = 'gave_up';
        return;
      }
      await delay(retryAfterMs);
    }
  };

  const done = (async () => {
    const total = Math.round(o.durationS * o.ratePerS);
    for (let n = 0; n < total; n++) {
      const due = start + (n * 1_000) / o.ratePerS;
      const wait = due - Date.now();
      if (wait > 0) await delay(wait);
      const queue = MIX[n % MIX.length]!;
      const intent = `c${o.seed}-${n}`;
      const it: Intent = { intent, queue, body: intentBody(queue, intent, n, o.receiverUrl), sentAtMs: Date.now() - start };
      intents.push(it);
      inFlight.push(send(it, n));
    }
    await Promise.all(inFlight);
  })();
  return { intents, history, done };
}
