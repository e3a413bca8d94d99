// k6 load test for the job API. Scenario, target and key from the environment:
//   SCENARIO=light BASE_URL=http://127.0.0.1:3000 API_KEY=… TESTID=light-1 k6 run loadtest/k6/script.js
// With Prometheus remote write (lights up the k6 dashboard):
//   K6_PROMETHEUS_RW_SERVER_URL=http://127.0.0.1:9090/api/v1/write K6_PROMETHEUS_RW_TREND_STATS='p(95),p(99),avg' \
//   k6 run -o experimental-prometheus-rw --tag testid=light-1 loadtest/k6/script.js
// Optional: RATE=2000 (constant arrival rate instead of VUs), WEBHOOK_TARGET_URL, RESULTS_DIR (default
// loadtest-results, which the repository ships: k6 writes files but does not create folders).
// Every payments request carries its own Idempotency-Key (scenarios.json idempotentQueues).
import http from 'k6/http';
import { check, sleep } from 'k6';
import { buildOptions, pickQueue, bodyFor, summaryText, idempotencyKey } from './options.js';

const scenarios = JSON.parse(open('../scenarios.json'));
const thresholds = JSON.parse(open('../thresholds.json'));

const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:3000';
const API_KEY = __ENV.API_KEY;
if (!API_KEY) throw new Error('API_KEY is required (one of the API_KEYS of the API)');

export const options = buildOptions(scenarios, thresholds, __ENV);

// Only 202 counts as success in http_req_failed (as in the no-k6 runner), not every 2xx/3xx.
http.setResponseCallback(http.expectedStatuses(202));

const bodies = Object.fromEntries(scenarios.mix.map(({ queue }) => [queue, bodyFor(scenarios, queue, __ENV)]));
// Init code runs once per VU: a random prefix per VU, then __VU and __ITER (k6's documented execution globals)
// make every key of the run unique without depending on a k6 version that has the WebCrypto global.
const keyPrefix = `k6-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
const params = (queue) => ({
  headers: {
    Authorization: `Bearer ${API_KEY}`,
    'Content-Type': 'application/json',
    ...(scenarios.idempotentQueues.includes(queue) ? { 'Idempotency-Key': idempotencyKey(keyPrefix, __VU, __ITER) } : {}),
  },
  tags: { queue, name: `POST /v1/queues/${queue}/jobs` },
});
const vuMode = !__ENV.RATE;

export default function () {
  const queue = pickQueue(scenarios.mix, Math.random());
  const res = http.post(`${BASE_URL}/v1/queues/${queue}/jobs`, bodies[queue], params(queue));
  check(res, { 'status is 202': (r) => r.status === 202 }, { queue });
  if (vuMode) sleep(scenarios.thinkTimeMs / 1000);
}

export function handleSummary(data) {
  const testid = options.tags.testid;
  const dir = __ENV.RESULTS_DIR || 'loadtest-results';
  return {
    stdout: summaryText(data, testid, scenarios.mix.map((m) => m.queue)),
    [`${dir}/${testid}.json`]: JSON.stringify(data, null, 2),
  };
}
