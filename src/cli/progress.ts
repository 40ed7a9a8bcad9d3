import cliProgress from 'cli-progress';
import type { Progress } from '../migrations/context.js';

/**
 * Progress of long operations on stderr: a bar on a terminal; on anything else (CI logs,
 * pipes) a start line, a line every 10 %, and a finish line with the rate.
 */
export function stderrProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  return {
    start(label, total) {
      const started = Date.now();
      if (stream.isTTY) {
        const bar = new cliProgress.SingleBar(
          { stream, format: `${label} [{bar}] {percentage}% {value}/{total} eta {eta_formatted}`, hideCursor: true, clearOnComplete: false },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total, 0);
        return { tick: (n) => bar.increment(n), stop: () => bar.stop() };
      }
      let done = 0;
      let nextReport = 0.1;
      stream.write(`${label}: 0/${total}\n`);
      return {
        tick(n) {
          done += n;
          if (done / total >= nextReport && done < total) {
            stream.write(`${label}: ${done}/${total} (${Math.floor((done / total) * 100)}%)\n`);
            while (done / total >= nextReport) nextReport += 0.1;
          }
        },
        stop() {
          const seconds = (Date.now() - started) / 1000;
          stream.write(`${label}: ${done}/${total} done in ${seconds.toFixed(1)} s (${Math.round(done / Math.max(seconds, 0.001))}/s)\n`);
        },
      };
    },
  };
}
