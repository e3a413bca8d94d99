/**
 * bench/cli.ts: `--quick` alone runs only the cost stage (the ratios, ≤ 3 min), `--only` still chooses, and the
 * regression guard's bound is checked: a ratio above 1, and only with the stage that measures it.
 */
import t from 'tap';
import { STAGES, parseBenchArgs } from '../../bench/cli';

t.test('--quick runs the cost and outbound stages unless --only says otherwise; a full run every stage', async (t) => {
  t.same(parseBenchArgs(['--quick'])?.stages, ['cost', 'outbound']);
  t.same(parseBenchArgs(['--quick', '--only', 'fixed,cost'])?.stages, ['fixed', 'cost']);
  t.same(parseBenchArgs([])?.stages, [...STAGES]);
});

t.test('--fail-above: a ratio above 1, with the cost stage', async (t) => {
  t.equal(parseBenchArgs(['--quick', '--fail-above', '1.6'])?.failAbove, 1.6);
  t.equal(parseBenchArgs([])?.failAbove, undefined);
  for (const bad of ['1', '0.9', 'x', '1.6x']) t.throws(() => parseBenchArgs(['--quick', '--fail-above', bad]), { name: 'UsageError', message: /--fail-above must be a ratio above 1/ }, `"${bad}" refused`);
  t.throws(() => parseBenchArgs(['--quick', '--fail-above', '-2']), { name: 'UsageError' }, 'a negative number is an unknown option to parseArgs');
  t.throws(() => parseBenchArgs(['--only', 'fixed', '--fail-above', '1.6']), { name: 'UsageError', message: /needs the cost stage/ });
});
