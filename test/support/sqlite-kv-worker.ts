/**
 * One of the processes of test/conformance/kv-sqlite-multiprocess.test.ts.
 * Usage: node sqlite-kv-worker.ts <db path> <rounds>. Prints `ready`, waits for the key `go`, then
 * races the other process on the same keys and prints what it won as JSON.
 */
import { setImmediate, setTimeout as sleep } from 'node:timers/promises';
import { SqliteKv } from '../../src/adapters/sqlite/sqlite-kv.ts';

const [path, roundsArg] = process.argv.slice(2);
if (path === undefined || roundsArg === undefined) throw new Error('usage: sqlite-kv-worker.ts <path> <rounds>');
const rounds = Number(roundsArg);
const kv = new SqliteKv({ path, busyTimeoutMs: 10_000 });

process.stdout.write('ready\n');
while ((await kv.get('go')) === null) await sleep(1);

let casConflicts = 0;
let prizes = 0;
let nxWins = 0;
for (let round = 0; round < rounds; round += 1) {
  await kv.incr('counter', 600_000);
  // Read-modify-write through compareAndSet: a lost update would make the total come out short.
  for (;;) {
    const seen = await kv.get('cas');
    if (seen === null) throw new Error('the parent must create the key cas');
    await setImmediate(); // widens the read-to-write window, so the other process gets into it
    if (await kv.compareAndSet('cas', seen, String(Number(seen) + 1))) break;
    casConflicts += 1;
  }
  if ((await kv.getdel(`prize:${round}`)) !== null) prizes += 1;
  if (await kv.set(`claim:${round}`, String(process.pid), { nx: true })) nxWins += 1;
}
await kv.close();
process.stdout.write(`${JSON.stringify({ casConflicts, prizes, nxWins })}\n`);
