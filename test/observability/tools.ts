/**
 * The real promtool / amtool. A missing binary is a loud failure, never a skip: CI installs them
 * (apt-get install -y prometheus prometheus-alertmanager).
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { REPO_ROOT } from '../../scripts/lib/repo-root';

const PACKAGE: Record<string, string> = { promtool: 'prometheus', amtool: 'prometheus-alertmanager' };

export function tool(name: 'promtool' | 'amtool', args: string[], cwd = REPO_ROOT): SpawnSyncReturns<string> {
  const res = spawnSync(name, args, { cwd, encoding: 'utf8' });
  if (res.error) {
    throw new Error(`${name} could not run (${res.error.message}): install it with apt-get install -y ${PACKAGE[name]}`);
  }
  return res;
}
