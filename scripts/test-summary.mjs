#!/usr/bin/env node
// Prints "N passed, N failed, N skipped" counting test cases: the top-level subtests of every test file, from
// the TAP that tap saved under .tap/test-results. A file that failed without reporting subtests counts as one
// failure, so a crashed file can never vanish from the count.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const root = '.tap/test-results';
const files = [];
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.tap')) files.push(p);
  }
};
try {
  walk(root);
} catch {
  console.log('0 passed, 1 failed');
  process.exit(1);
}
let passed = 0;
let failed = 0;
let skipped = 0;
for (const file of files) {
  const lines = readFileSync(file, 'utf8').split('\n');
  let cases = 0;
  let fileFailed = false;
  for (const line of lines) {
    const m = /^(not )?ok \d+ - (.*)$/.exec(line);
    if (!m) continue;
    cases++;
    if (/# SKIP/i.test(m[2]) || /# TODO/i.test(m[2])) skipped++;
    else if (m[1]) {
      failed++;
      fileFailed = true;
    } else passed++;
  }
  const bailed = lines.some((l) => /^Bail out!/.test(l));
  if ((cases === 0 || bailed) && !fileFailed) {
    failed++;
    console.error(`test file reported no result or bailed out: ${file}`);
  }
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
