/**
 * `npm run stack` — the whole stack natively on loopback, URLs printed, Ctrl-C stops everything.
 *   --demo          then run the load demo (loadtest scenario "light" with faults injected half-way; drill timings)
 *   --drill         short alert `for:` and fast grouping (alerts visible within seconds)
 *   --workers N     worker processes (default 2)
 *   --slack-url-file FILE   send alerts to a real Slack webhook (URL in FILE) instead of the local receiver
 */
import { DEFAULT_PORTS, startStack } from './stack';
import { formatReport, runLoad } from '../../loadtest/run';

function arg(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
}

async function main(argv: string[]): Promise<void> {
  const workers = Number(arg(argv, 'workers') ?? 2);
  const ports = { ...DEFAULT_PORTS, workerMetrics: Array.from({ length: workers }, (_, i) => 9465 + i) };
  process.stdout.write('starting the stack (redis, redis_exporter, prometheus, alertmanager, api, workers, webhook receiver)…\n');
  const stack = await startStack({
    ports,
    workers,
    // The demo uses drill timings so its alerts fire (and resolve) while you watch.
    drill: argv.includes('--drill') || argv.includes('--demo'),
    slackUrlFile: arg(argv, 'slack-url-file'),
    output: process.stdout,
  });
  const lines = Object.entries(stack.urls).map(([k, v]) => `  ${k.padEnd(16)} ${v}`);
  process.stdout.write(`\nstack ready:\n${lines.join('\n')}\n  API key          ${stack.apiKey}\n\n` +
    `try: curl -s -X POST ${stack.urls.api}/v1/queues/payments/jobs -H "Authorization: Bearer ${stack.apiKey}" ` +
    `-H 'Content-Type: application/json' -d '{"data":{"amount":100,"currency":"EUR","account":"a"}}'\n` +
    'Grafana and Jaeger cannot run natively here: use `docker compose up` for them (docs/compose.md).\nCtrl-C stops everything.\n\n');

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('\nstopping the stack…\n');
    await stack.stop();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);

  if (argv.includes('--demo')) {
    const faults = setTimeout(async () => {
      process.stdout.write('\ndemo: injecting payments faults (50 % failures, 5 % 429s, +150 ms) — watch the alerts\n');
      await fetch(`${stack.urls.api}/v1/admin/faults/payments`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${stack.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ failureRate: 0.5, rateLimitRate: 0.05, latencyMs: 150 }),
      }).catch(() => undefined);
    }, 30_000);
    const report = await runLoad({ scenario: arg(argv, 'scenario') ?? 'light', baseUrl: stack.urls.api!, apiKey: stack.apiKey, webhookUrl: stack.urls.receiver! });
    clearTimeout(faults);
    process.stdout.write(`\n${formatReport(report)}\nqueue status: ${await (await fetch(`${stack.urls.api}/queue/status`)).text()}\n\nthe stack keeps running; Ctrl-C stops it.\n`);
  }
}

main(process.argv.slice(2)).catch((err: Error) => {
  process.stderr.write(`stack failed: ${err.message}\n`);
  process.exit(1);
});
