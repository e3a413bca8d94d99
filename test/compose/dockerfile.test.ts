/**
 * The Dockerfile, checked without Docker: pinned slim Node 20 multi-stage build; the build stage is replayed
 * (its COPY list into an empty folder, then `npm run build`'s tsc) and the runtime stage assembled from what it
 * copies, to prove the image holds every file compose's commands start and every file they read at run time.
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { ROOT } from '../helpers/services';
import { freePort } from '../helpers/ports';

const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
const compose = YAML.parse(readFileSync(path.join(ROOT, 'compose.yaml'), 'utf8'), { merge: true });
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));

interface Stage {
  from: string;
  name?: string;
  copies: { from?: string; src: string[]; dest: string }[];
  lines: string[];
}

function stages(text: string): Stage[] {
  const out: Stage[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) {
      out.push({ from: from[1]!, name: from[2], copies: [], lines: [] });
      continue;
    }
    const stage = out[out.length - 1]!;
    stage.lines.push(line);
    const copy = /^COPY\s+(?:--from=(\S+)\s+)?(.+)$/i.exec(line);
    if (copy) {
      const parts = copy[2]!.split(/\s+/);
      stage.copies.push({ from: copy[1], src: parts.slice(0, -1), dest: parts[parts.length - 1]! });
    }
  }
  return out;
}

const [build, runtime] = stages(dockerfile);

t.test('multi-stage, pinned node:24 slim images, non-root runtime', async (t) => {
  t.ok(build && runtime, 'two stages');
  for (const s of [build!, runtime!]) t.match(s.from, /^node:24\.\d+\.\d+-[\w-]*slim$/, `${s.from}: Node 24, exact version, slim`);
  t.equal(build!.from, runtime!.from, 'same base in both stages (native modules built for the runtime)');
  t.ok(build!.lines.some((l) => /^RUN npm ci\b/.test(l)), 'npm ci from the lock file');
  t.ok(build!.lines.some((l) => /npm run build/.test(l) && /npm prune --omit=dev/.test(l)), 'build, then drop dev dependencies');
  t.ok(runtime!.lines.includes('USER node'), 'runs as the unprivileged node user');
  t.ok(runtime!.lines.includes('ENV NODE_ENV=production'));
  const ignored = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
  for (const c of build!.copies) for (const src of c.src) t.notOk(ignored.includes(src), `${src} is copied, so .dockerignore must not exclude it`);
  for (const secret of ['.env', 'secrets', 'node_modules', '.git']) t.ok(ignored.includes(secret), `${secret} stays out of the build context`);
});

t.test('one image: compose runs the api, worker and receiver from it with the package scripts’ commands', async (t) => {
  const image = compose.services.api.image;
  for (const name of ['api', 'worker', 'webhook-receiver']) {
    t.equal(compose.services[name].image, image, `${name} uses the project image`);
    t.equal(compose.services[name].build, '.', `${name} builds from this Dockerfile`);
  }
  const script = (s: string) => s.replace(/^node\s+/, '').split(/\s+/);
  t.same(compose.services.api.command.slice(1), script(pkg.scripts['start:api']), 'api command = npm run start:api');
  t.same(compose.services.worker.command.slice(1), script(pkg.scripts['start:worker']), 'worker command = npm run start:worker');
  t.same(compose.services['webhook-receiver'].command, ['node', 'dist/services/webhook-receiver/main.js']);
});

t.test('the build stage replayed: its COPY list compiles, and the runtime stage has what the commands need', { timeout: 120_000 }, async (t) => {
  const work = mkdtempSync(path.join(os.tmpdir(), 'dockerfile-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const app = path.join(work, 'build');
  mkdirSync(app);
  for (const c of build!.copies) {
    t.notOk(c.from, 'build stage copies from the context only');
    for (const src of c.src) {
      t.ok(existsSync(path.join(ROOT, src)), `COPY ${src} exists`);
      const dest = c.dest.endsWith('/') && c.src.length > 1 ? path.join(app, c.dest, path.basename(src)) : path.join(app, c.dest);
      cpSync(path.join(ROOT, src), c.dest === './' ? path.join(app, path.basename(src)) : dest, { recursive: true });
    }
  }
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(app, 'node_modules'), 'dir');
  const tsc = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: app, encoding: 'utf8' });
  t.equal(tsc.status, 0, `tsc in the replayed build stage:\n${tsc.stdout}${tsc.stderr}`);

  // Runtime stage: only what it copies from the build stage.
  const run = path.join(work, 'run');
  mkdirSync(run);
  for (const c of runtime!.copies) {
    t.equal(c.from, build!.name, `runtime copies from the build stage: ${c.src.join(' ')}`);
    for (const src of c.src) {
      const rel = path.relative('/app', src);
      const to = path.join(run, path.relative('.', c.dest.endsWith('/') ? path.join(c.dest, path.basename(rel)) : c.dest));
      mkdirSync(path.dirname(to), { recursive: true });
      if (rel === 'node_modules') symlinkSync(path.join(ROOT, 'node_modules'), to, 'dir');
      else cpSync(path.join(app, rel), to, { recursive: true });
    }
  }
  for (const name of ['api', 'worker', 'webhook-receiver']) {
    for (const arg of compose.services[name].command as string[]) {
      const file = arg.replace(/^\.\//, '');
      if (file.startsWith('dist/')) t.ok(existsSync(path.join(run, file)), `${name}: ${file} is in the image`);
    }
  }
  const exposed = runtime!.lines.find((l) => l.startsWith('EXPOSE'))!.split(/\s+/).slice(1).map(Number);
  for (const port of [3000, 9464, 9465, 8099]) t.ok(exposed.includes(port), `EXPOSE ${port}`);

  // Run-time reads: the config finds thresholds.yaml from the image's working directory (THRESHOLDS_FILE's default;
  // it sets the worker memory limits), the receiver starts.
  const cfg = spawnSync(
    process.execPath,
    ['-e', "const c=require('./dist/services/common/config').parseConfig({REDIS_URL:'redis://redis:6379',METRICS_PORT:'9465'});console.log(JSON.stringify(c))"],
    { cwd: run, encoding: 'utf8' },
  );
  t.equal(cfg.status, 0, cfg.stderr);
  t.match(cfg.stdout, /536870912/, 'worker memory limits read from observability/thresholds.yaml inside the image');
  const port = await freePort();
  const child = spawn(process.execPath, ['dist/services/webhook-receiver/main.js'], { cwd: run, env: { PATH: process.env.PATH ?? '', RECEIVER_PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve(d.toString()));
    child.once('exit', (code) => reject(new Error(`receiver exited ${code}`)));
  });
  t.match(line, /webhook receiver listening/);
  t.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
  child.kill('SIGTERM');
  t.equal(await exited, 0);
});
