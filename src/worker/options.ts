import { DomainError } from '../errors.js';

/** How a worker process runs. Flags override the environment, which overrides the defaults. */
export interface WorkerOptions {
  /** Batch loops run at once by one process, each on its own connection. */
  concurrency: number;
  /** Events claimed (and committed) per batch. */
  batchSize: number;
  /** Failed attempts retried before an event is given up on: at most 1 + maxRetries attempts. */
  maxRetries: number;
  /** Backoff of the first retry; doubles per failed attempt, up to retryMaxMs (equal jitter: half fixed, half random). */
  retryBaseMs: number;
  retryMaxMs: number;
  /** Polling interval when idle: the fallback for LISTEN/NOTIFY and what picks up retries coming due. */
  pollMs: number;
  /** statement_timeout of the worker's transactions: a statement running longer fails the attempt ('timeout'). */
  statementTimeoutMs: number;
}

export const DEFAULT_WORKER_OPTIONS: Readonly<WorkerOptions> = {
  concurrency: 2,
  // 100 events per transaction: 500 measured ~2x the throughput of 10 on touchpoints, and a
  // batch of 100 still commits in well under a second with conversions (see bench/worker.bench.ts).
  batchSize: 100,
  maxRetries: 5,
  retryBaseMs: 10_000,
  retryMaxMs: 3_600_000,
  pollMs: 2_000,
  statementTimeoutMs: 60_000,
};

export class WorkerOptionError extends DomainError {}

const SPECS: { key: keyof WorkerOptions; env: string; flag: string; min: number; max: number }[] = [
  { key: 'concurrency', env: 'SKELDIR_WORKER_CONCURRENCY', flag: '--concurrency', min: 1, max: 64 },
  { key: 'batchSize', env: 'SKELDIR_WORKER_BATCH_SIZE', flag: '--batch-size', min: 1, max: 10_000 },
  { key: 'maxRetries', env: 'SKELDIR_WORKER_MAX_RETRIES', flag: '--max-retries', min: 0, max: 100 },
  { key: 'retryBaseMs', env: 'SKELDIR_WORKER_RETRY_BASE_MS', flag: '--retry-base-ms', min: 1, max: 86_400_000 },
  { key: 'retryMaxMs', env: 'SKELDIR_WORKER_RETRY_MAX_MS', flag: '--retry-max-ms', min: 1, max: 7 * 86_400_000 },
  { key: 'pollMs', env: 'SKELDIR_WORKER_POLL_MS', flag: '--poll-ms', min: 10, max: 3_600_000 },
  { key: 'statementTimeoutMs', env: 'SKELDIR_WORKER_STATEMENT_TIMEOUT_MS', flag: '--statement-timeout-ms', min: 100, max: 86_400_000 },
];

/** Environment variables and flags of the worker, for help texts and docs. */
export const WORKER_OPTION_SPECS = SPECS;

/**
 * Reads the options from the environment and (when given) command-line flag values (strings,
 * as commander passes them). Anything not an integer in range is a `worker_option_invalid`
 * error naming the flag or variable (the CLI exits 2).
 */
export function workerOptions(env: NodeJS.ProcessEnv = process.env, flags: Partial<Record<keyof WorkerOptions, string>> = {}): WorkerOptions {
  const out: WorkerOptions = { ...DEFAULT_WORKER_OPTIONS };
  for (const spec of SPECS) {
    for (const [source, raw] of [[spec.env, env[spec.env]], [spec.flag, flags[spec.key]]] as const) {
      if (raw === undefined || raw === '') continue;
      const value = /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
      if (!Number.isSafeInteger(value) || value < spec.min || value > spec.max) {
        throw new WorkerOptionError('worker_option_invalid', `${source} must be an integer from ${spec.min} to ${spec.max}, got ${JSON.stringify(raw)}`, {
          field: source,
        });
      }
      out[spec.key] = value;
    }
  }
  if (out.retryMaxMs < out.retryBaseMs) {
    throw new WorkerOptionError('worker_option_invalid', `the retry ceiling (${out.retryMaxMs} ms) is below the base delay (${out.retryBaseMs} ms)`, {
      field: 'retryMaxMs',
    });
  }
  return out;
}
