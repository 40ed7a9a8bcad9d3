import { hostname } from 'node:os';
import pino from 'pino';
import type { Progress } from '../migrations/context.js';

/**
 * The logs of the long-running commands (`start`, `serve`, `worker`, `attribution schedule`):
 * every line they write is one JSON object (pino) on stdout, at LOG_LEVEL, tagged with the
 * `service` it comes from (`skeldir` for start-up and shutdown, `api`, `worker`,
 * `attribution-scheduler`). Nothing else goes to stdout, so a log collector reads one format;
 * stderr carries only the final one-line reason when a command cannot run. pino itself stops
 * writing, quietly, when stdout is closed (EPIPE).
 */
export type Logger = pino.Logger;

let root: pino.Logger | undefined;

/** The process's one logger (created on first use). */
function rootLogger(): pino.Logger {
  root ??= pino(
    { level: process.env.LOG_LEVEL || 'info', base: BASE_FIELDS },
    // Synchronous: a line written just before the process exits is not lost.
    pino.destination({ fd: 1, sync: true }),
  );
  return root;
}

/** The fields every log line of a long-running command starts with (the API's Fastify logger uses them too). */
export const BASE_FIELDS = { pid: process.pid, hostname: hostname() };

/** The logger of one service of this process. */
export function serviceLogger(service: string): pino.Logger {
  return rootLogger().child({ service });
}

/** Progress of long operations (migrations during `skeldir start`) as log lines: start, every 10 %, done. */
export function logProgress(log: pino.Logger): Progress {
  return {
    start(label, total) {
      const started = Date.now();
      let done = 0;
      let next = 0.1;
      log.info({ step: label, done: 0, total }, `${label}: 0/${total}`);
      return {
        tick(n) {
          done += n;
          if (total > 0 && done / total >= next && done < total) {
            log.info({ step: label, done, total }, `${label}: ${done}/${total} (${Math.floor((done / total) * 100)}%)`);
            while (done / total >= next) next += 0.1;
          }
        },
        stop() {
          const seconds = (Date.now() - started) / 1000;
          log.info({ step: label, done, total, seconds }, `${label}: ${done}/${total} done in ${seconds.toFixed(1)} s`);
        },
      };
    },
  };
}
