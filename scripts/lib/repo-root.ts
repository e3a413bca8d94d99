/**
 * The repository root for the tools that read and write its files (observability generator, stack, bench, tests):
 * the nearest folder above this file holding package.json, so the answer is the same from the sources and from
 * dist/. Services never need it: the files they read are configuration (services/common/config).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

export const REPO_ROOT = (() => {
  let dir = __dirname;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`package.json not found above ${__dirname}`);
    dir = up;
  }
  return dir;
})();

export function repoPath(...parts: string[]): string {
  return path.join(REPO_ROOT, ...parts);
}
