/** Readings of /proc (Linux): a process's CPU time and memory peak, the whole machine's busy time. */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

/** Peak resident set size of a live process (VmHWM), bytes; 0 when it is gone. */
export function peakRss(pid: number): number {
  return statusKb(pid, 'VmHWM') * 1024;
}

/** Current resident set size of a live process (VmRSS), bytes; 0 when it is gone. */
export function currentRss(pid: number): number {
  return statusKb(pid, 'VmRSS') * 1024;
}

function statusKb(pid: number, field: string): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** CPU seconds (user + system) a live process has used, from /proc/<pid>/stat; 0 when it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}

/**
 * Busy CPU seconds of the whole machine (all processes), from /proc/stat: user, nice, system and steal. Interrupt
 * and softirq time are left out: on loopback most of it is the kernel delivering the benchmark's own TCP traffic
 * (Redis commands, HTTP), which no process is charged for — counted here it would pass for another process's load.
 */
export function machineBusySeconds(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  return (f[0]! + f[1]! + f[2]! + f[7]!) / 100;
}

export function cpuModel(): string {
  const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
  return m?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
}
