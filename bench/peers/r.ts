// Running the R peers of the benchmarks (bench/peers/*.R): found on PATH as Rscript, or skipped
// with a message saying why (the figures then have no peer, and the bench says so).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

export const PEERS = import.meta.dirname;

/** Rscript's version line, or null when it is not on PATH. */
export function rscript(): string | null {
  const r = spawnSync('Rscript', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return null;
  return (r.stdout + r.stderr).trim().split('\n')[0]!;
}

/** Whether R can load a package (e.g. rstan). */
export function rHasPackage(name: string): boolean {
  const r = spawnSync('Rscript', ['-e', `suppressMessages(library(${name}))`], { encoding: 'utf8' });
  return !r.error && r.status === 0;
}

/** Runs bench/peers/<script> with arguments; returns the key=value pairs of its last stdout line. */
export function runR(script: string, args: string[], env: NodeJS.ProcessEnv = {}): Record<string, string> {
  const r = spawnSync('Rscript', [join(PEERS, script), ...args], { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
  if (r.error || r.status !== 0) throw new Error(`Rscript ${script} failed (${r.status ?? r.error}): ${r.stderr.slice(-2000)}`);
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  return Object.fromEntries(last.split(' ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}
