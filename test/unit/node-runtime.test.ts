/**
 * The runtime every test, npm script and spawned service gets: scripts/setup.sh puts Node 24 in .node/ when the
 * system node is older than 22 and links node_modules/.bin/node to it, which npm puts first on PATH for scripts.
 * A run that silently fell back to an older system node would pass everything else and ship untested.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
const major = (version: string) => Number(version.replace(/^v/, '').split('.')[0]);

t.test('the test process runs on a Node the package supports (>= 22)', async (t) => {
  const engines = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
  t.equal(engines, '>=22');
  t.ok(major(process.version) >= 22, `process.version ${process.version}`);
});

t.test('`node` on PATH, as npm scripts and shebang tools resolve it, is the same Node as this process', async (t) => {
  const onPath = execFileSync('node', ['-p', 'process.version'], { encoding: 'utf8' }).trim();
  t.equal(onPath, process.version);
});

t.test('a service spawned the way tests start services runs this Node and loads the native msgpack addon', async (t) => {
  // BullMQ decodes job data with msgpackr; without its native extractor it falls back to pure JS silently.
  const out = execFileSync(process.execPath, ['-p', "process.version + ' ' + require('msgpackr').isNativeAccelerationEnabled"], {
    cwd: ROOT,
    encoding: 'utf8',
  }).trim();
  t.equal(out, `${process.version} true`);
});
