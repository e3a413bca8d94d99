// Builds k6 options from the shared scenarios and thresholds files. Plain JavaScript with no k6 import, so the
// project's tests can check it under Node too. Thresholds come from observability/thresholds.yaml
// (via loadtest/thresholds.json, generated).

/** Each scenario stage means "hold `target` VUs for `duration`": k6 ramps, so ramp briefly, then hold. */
export function stagesFor(scenario) {
  const out = [];
  for (const st of scenario.stages) {
    out.push({ duration: '5s', target: st.target });
    out.push({ duration: st.duration, target: st.target });
  }
  out.push({ duration: '5s', target: 0 });
  return out;
}

function seconds(d) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(d);
  if (!m) throw new Error(`invalid duration ${d}`);
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2]];
}

export function buildOptions(scenarios, thresholds, env) {
  const name = env.SCENARIO || 'smoke';
  const scenario = scenarios.scenarios[name];
  if (!scenario) throw new Error(`unknown SCENARIO "${name}"; known: ${Object.keys(scenarios.scenarios).join(', ')}`);
  const rate = env.RATE ? Number(env.RATE) : 0;
  const total = scenario.stages.reduce((a, s) => a + seconds(s.duration), 0);
  const maxVus = Math.max(...scenario.stages.map((s) => s.target));
  const executor = rate > 0
    ? { executor: 'constant-arrival-rate', rate, timeUnit: '1s', duration: `${total}s`, preAllocatedVUs: Math.max(10, Math.ceil(rate / 20)), maxVUs: Math.max(100, maxVus) }
    : { executor: 'ramping-vus', startVUs: 0, stages: stagesFor(scenario), gracefulRampDown: '10s' };

  const th = {
    http_req_failed: [`rate<${thresholds.error_ratio}`],
    checks: [`rate>${1 - thresholds.error_ratio}`],
  };
  for (const { queue } of scenarios.mix) {
    const p95 = (thresholds.queues[queue] || {}).http_p95_ms || thresholds.default_http_p95_ms;
    // abortOnFail stops a run early once a queue is clearly over its budget (the progressive runner stops too).
    th[`http_req_duration{queue:${queue}}`] = [{ threshold: `p(95)<${p95}`, abortOnFail: true, delayAbortEval: '30s' }];
    th[`http_req_failed{queue:${queue}}`] = [`rate<${thresholds.error_ratio}`];
  }
  return {
    scenarios: { [name]: executor },
    thresholds: th,
    tags: { testid: env.TESTID || name },
    summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
    discardResponseBodies: true,
  };
}

/** Weighted pick of a queue for one iteration (r in [0, 1)). */
export function pickQueue(mix, r) {
  const total = mix.reduce((a, m) => a + m.weight, 0);
  let x = r * total;
  for (const m of mix) {
    if (x < m.weight) return m.queue;
    x -= m.weight;
  }
  return mix[mix.length - 1].queue;
}

/** One request's Idempotency-Key: unique per VU (prefix drawn in each VU's init code) and iteration. */
export function idempotencyKey(prefix, vu, iter) {
  return `${prefix}-${vu}-${iter}`;
}

export function bodyFor(scenarios, queue, env) {
  return JSON.stringify(scenarios.payloads[queue]).replace(/\$\{(\w+)\}/g, (_, k) => {
    if (k === 'WEBHOOK_TARGET_URL') return env.WEBHOOK_TARGET_URL || 'http://127.0.0.1:8099/hooks';
    throw new Error(`payload needs ${k}`);
  });
}

/** End-of-test text: per-queue requests, p50/p95/p99 and error rate, then every threshold with ✓/✗. */
export function summaryText(data, testid, queues) {
  const m = data.metrics;
  const reqs = m.http_reqs ? m.http_reqs.values.count : 0;
  const lines = [`k6 ${testid}: ${reqs} requests`, 'queue          requests  error %   p50 ms   p95 ms   p99 ms'];
  const fmt = (v, w) => (typeof v === 'number' ? v.toFixed(1) : '-').padStart(w);
  for (const q of queues) {
    const d = m[`http_req_duration{queue:${q}}`];
    const f = m[`http_req_failed{queue:${q}}`];
    if (!d || !f) continue;
    const n = f.values.passes + f.values.fails;
    lines.push(`${q.padEnd(14)} ${String(n).padStart(8)} ${fmt(f.values.rate * 100, 8)} ${fmt(d.values.med, 8)} ${fmt(d.values['p(95)'], 8)} ${fmt(d.values['p(99)'], 8)}`);
  }
  let failed = 0;
  for (const name of Object.keys(m)) {
    const th = m[name].thresholds;
    if (!th) continue;
    for (const expr of Object.keys(th)) {
      if (!th[expr].ok) failed++;
      lines.push(`${th[expr].ok ? '✓' : '✗'} ${name} ${expr}`);
    }
  }
  lines.push(failed ? `FAIL: ${failed} threshold(s) crossed` : 'PASS');
  return lines.join('\n') + '\n';
}
