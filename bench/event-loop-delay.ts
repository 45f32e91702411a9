/**
 * Loaded into a server under test with `NODE_OPTIONS=--import …/event-loop-delay.ts` by
 * bench/profile.ts: records the event loop's delay (perf_hooks.monitorEventLoopDelay, 1 ms
 * resolution) from BENCH_ELD_START_FILE's appearance on, and writes the histogram to
 * BENCH_ELD_FILE when the process exits.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const out = process.env.BENCH_ELD_FILE;
const startFile = process.env.BENCH_ELD_START_FILE;
if (out !== undefined && startFile !== undefined) {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  // Started once the measured period begins: setup logins and warm-up stay out of it.
  const poll = setInterval(() => {
    if (!existsSync(startFile)) return;
    clearInterval(poll);
    histogram.enable();
  }, 50);
  poll.unref();
  process.on('exit', () => {
    histogram.disable();
    const ms = (ns: number) => ns / 1e6;
    writeFileSync(out, JSON.stringify({
      count: histogram.count, min: ms(histogram.min), mean: ms(histogram.mean), p50: ms(histogram.percentile(50)),
      p90: ms(histogram.percentile(90)), p99: ms(histogram.percentile(99)), p999: ms(histogram.percentile(99.9)), max: ms(histogram.max),
    }));
  });
}
