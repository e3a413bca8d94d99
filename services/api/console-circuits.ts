/**
 * The operator console shows, per queue, the circuits of the queue's outbound dependency that are not closed
 * (routes/console.ts). bull-board reads a queue adapter's getDescription() and getDisplayName() on every
 * GET /admin/queues/api/queues — synchronously — so the console's scope refreshes ConsoleCircuits before that one
 * route's handler (a preHandler), and CircuitAwareAdapter answers from it:
 *
 * - description (the queue page's one-line subtitle, the queue info dialog, the overview card's ⓘ tooltip):
 *   `⚠ circuit open: payment_provider (since 14:02:11 UTC, half-open probe at 14:02:41 UTC, 12 recent failures)
 *   — <catalog description>`; webhooks name each host (at most MAX_LISTED, then how many more). The circuit
 *   comes first because bull-board cuts the subtitle to one line with an ellipsis;
 * - display name (the overview card's title and the queue page's heading): `⚠ payments · circuit open`. The sign
 *   comes first because the card cuts its title to its width (bull-board's own `[ Paused ]` is a badge of its own,
 *   which an adapter cannot add); bull-board's menu lists queues by name only, so the menu stays as it is.
 *
 * The circuits come from the API's queue snapshot (queue-snapshot.ts): the same read, at most once per second per
 * API process, that makes /queue/status and /queue/health call the queue degraded, so they agree. When that read
 * fails the console still answers, with the catalog descriptions alone, and one warning is logged per failed read.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Queue } from 'bullmq';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import type { CircuitInfo } from '../common/outbound-circuits';
import { QUEUE_CATALOG, QUEUE_NAMES, type QueueName } from '../common/queue-catalog';
import type { QueuesSnapshot } from './queue-snapshot';

/** Targets named in a description; the rest are counted (GET /v1/admin/circuits lists them all). */
export const MAX_LISTED = 3;

const clock = (iso: string) => `${iso.slice(11, 19)} UTC`;
const stateWord = (c: CircuitInfo) => (c.state === 'half_open' ? 'half-open' : 'open');
const failures = (n: number) => `${n} recent failure${n === 1 ? '' : 's'}`;

function details(c: CircuitInfo, withState: boolean): string {
  const since = `${withState ? `${stateWord(c)} ` : ''}since ${clock(c.openedAt)}`;
  // Open: no call goes through until the probe time; half-open: one probe call is deciding.
  const probe = c.state === 'open' ? `half-open probe at ${clock(c.nextProbeAt)}` : 'probe under way';
  return `${since}, ${probe}, ${failures(c.recentFailures)}`;
}

/** The circuit part of a queue's description ('' while every circuit of its dependency is closed). */
export function circuitNote(circuits: readonly CircuitInfo[]): string {
  if (circuits.length === 0) return '';
  if (circuits.length === 1) {
    const c = circuits[0]!;
    return `⚠ circuit ${stateWord(c)}: ${c.target} (${details(c, false)})`;
  }
  const listed = circuits.slice(0, MAX_LISTED).map((c) => `${c.target} (${details(c, true)})`);
  const more = circuits.length > MAX_LISTED ? `; and ${circuits.length - MAX_LISTED} more` : '';
  return `⚠ ${circuits.length} circuits open: ${listed.join('; ')}${more}`;
}

/** A queue's display name while circuits of its dependency are not closed ('' while every one is closed). */
export function circuitDisplayName(queue: QueueName, circuits: readonly CircuitInfo[]): string {
  if (circuits.length === 0) return '';
  if (circuits.length === 1) return `⚠ ${queue} · circuit ${stateWord(circuits[0]!)}`;
  return `⚠ ${queue} · ${circuits.length} circuits open`;
}

/** The latest circuits per queue, as the console's last refresh read them. */
export class ConsoleCircuits {
  private current: Partial<Record<QueueName, CircuitInfo[]>> = {};
  private lastError: unknown;

  constructor(private readonly snapshot: () => Promise<QueuesSnapshot>) {}

  /** Never throws: on a failed read the console shows no circuit info (and says so once in the log). */
  async refresh(log: FastifyBaseLogger): Promise<void> {
    try {
      const { queues } = await this.snapshot();
      this.current = Object.fromEntries(QUEUE_NAMES.map((q) => [q, queues[q].circuits]));
      this.lastError = undefined;
    } catch (err) {
      this.current = {};
      // The snapshot remembers a failed read for its TTL: one warning per failed read, not per console poll.
      if (err !== this.lastError) {
        this.lastError = err;
        log.warn({ err }, 'console: circuit state unavailable; queues shown without it');
      }
    }
  }

  of(queue: QueueName): readonly CircuitInfo[] {
    return this.current[queue] ?? [];
  }
}

/**
 * bull-board's BullMQ adapter, whose description and display name carry the queue's open circuits. It reads the
 * queue's Queue at each use (`current`): the API replaces a Queue whose set-up failed (plugins/app/queues.ts), and
 * bull-board's adapter would otherwise keep the broken one for the life of the process.
 */
export class CircuitAwareAdapter extends BullMQAdapter {
  constructor(
    current: () => Queue,
    private readonly queueName: QueueName,
    private readonly circuits: ConsoleCircuits,
  ) {
    super(current(), { description: QUEUE_CATALOG[queueName].description });
    // Every operation of the base adapter goes through `this.queue` (@bull-board/api queueAdapters/bullMQ.js).
    Object.defineProperty(this, 'queue', { get: current, configurable: true, enumerable: false });
  }

  override getDescription(): string {
    const note = circuitNote(this.circuits.of(this.queueName));
    return note ? `${note} — ${super.getDescription()}` : super.getDescription();
  }

  override getDisplayName(): string {
    return circuitDisplayName(this.queueName, this.circuits.of(this.queueName)) || super.getDisplayName();
  }
}
