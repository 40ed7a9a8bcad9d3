import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(ROOT, 'bin', 'skeldir.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the installed command (`bin/skeldir.js`) as a user would. By default it runs the
 * TypeScript sources (SKELDIR_FROM_SOURCE=1) so a test never exercises a stale dist/;
 * `{ compiled: true }` runs the compiled build instead.
 */
export function spawnCli(args: string[], options: { env?: NodeJS.ProcessEnv; compiled?: boolean; detached?: boolean } = {}): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, SKELDIR_FROM_SOURCE: options.compiled ? '0' : '1', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
    // Its own process group, as a command started from a terminal has.
    detached: options.detached ?? false,
  });
}

export function runCli(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; input?: string; compiled?: boolean; timeoutMs?: number } = {},
): Promise<CliResult> {
  const child = spawnCli(args, options);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  child.stdin!.end(options.input ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
  return new Promise((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    }),
  );
}
