/**
 * A Redis Cluster's share of read-batch.ts: the keys read in one event-loop turn, grouped by the
 * master that serves their slot, go to each master as one read-only script that GETs them all.
 *
 * An MGET cannot do it: a Cluster refuses one whose keys hash to different slots, and sessions'
 * keys hash everywhere. Sent one by one (ioredis' auto-pipeline), each read was a Command object with
 * its own timer and promise: twice the node's CPU per validation of a single Redis. A script
 * flagged `allow-cross-slot-keys` (Redis 7+, Valkey) may read any key its node serves; its first key
 * is declared (a node that does not serve it answers MOVED) and all are passed as arguments,
 * already prefixed. The script goes straight onto the master's connection, as one command: through
 * the Cluster client each turn's script also cost a pipeline object, a slot lookup and a deferred
 * send per master (bench/README.md).
 *
 * Nothing here is cached or kept: every key is read on its node after it was asked for
 * (docs/design.md §3.2, invariant 6). When the slot map was stale, a key moved (the script then
 * fails with "non local key"), or the server runs no such scripts, Redis answers with an error:
 * that group's keys are read again one by one, through the client's own redirection handling.
 * Anything else (no answer, a closed connection) fails the batch like any read.
 */
import { createHash } from 'node:crypto';
import { Command, type Cluster, type Redis } from 'ioredis';
import { attempt, toStoreError } from './redis-connection.ts';

const READ_MANY = `#!lua flags=no-writes,allow-cross-slot-keys
local values = {}
for i = 1, #ARGV do values[i] = redis.call('GET', ARGV[i]) end
return values`;

const READ_MANY_SHA = createHash('sha1').update(READ_MANY).digest('hex');

/** CRC16-XMODEM of every byte value, as Redis's crc16.c tabulates it. */
const CRC16 = Uint16Array.from({ length: 256 }, (_, byte) => {
  let crc = byte << 8;
  for (let bit = 0; bit < 8; bit += 1) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  return crc;
});

/**
 * The hash slot of a key (CRC16 of the key or of its `{hash tag}`, mod 16384), as Redis computes
 * it. latchkey's keys are ASCII, whose char codes are their UTF-8 bytes; others are encoded first.
 */
export function keySlot(key: string): number {
  const bytes: string | Buffer = /^[\x00-\x7f]*$/.test(key) ? key : Buffer.from(key, 'utf8');
  let start = 0;
  let end = bytes.length;
  const open = bytes.indexOf('{');
  if (open !== -1) {
    const close = bytes.indexOf('}', open + 1);
    if (close > open + 1) {
      start = open + 1;
      end = close;
    }
  }
  let crc = 0;
  if (typeof bytes === 'string') {
    for (let i = start; i < end; i += 1) crc = ((crc << 8) & 0xffff) ^ (CRC16[((crc >> 8) ^ bytes.charCodeAt(i)) & 0xff] ?? 0);
  } else {
    for (let i = start; i < end; i += 1) crc = ((crc << 8) & 0xffff) ^ (CRC16[((crc >> 8) ^ (bytes[i] ?? 0)) & 0xff] ?? 0);
  }
  return crc & 16383;
}

/** Reads many keys of a Cluster: one script per master, one value (or null) per key, in order. */
export function clusterReadMany(client: Cluster, keyPrefix: string): (keys: readonly string[]) => Promise<(string | null)[]> {
  const scripted = new WeakSet<Redis>();
  /** Through the Cluster client, which follows MOVED and ASK and waits out a reconnecting node. */
  const oneByOne = (keys: readonly string[]) => Promise.all(keys.map((key) => attempt(() => client.get(key))));
  /** A reply (a moved slot, a key the node does not serve): read the keys again one by one. Anything else fails the batch. */
  const orOneByOne = (keys: readonly string[]) => (error: unknown): Promise<(string | null)[]> => {
    if (error instanceof Error && error.name === 'ReplyError') return oneByOne(keys);
    throw toStoreError(error);
  };
  const readGroup = (master: string, keys: readonly string[]): Promise<readonly (string | null)[]> => {
    // No slot map yet, or the master's connection is not up: the Cluster client's own path.
    const node = masterConnection(client, master);
    if (node === undefined) return oneByOne(keys);
    const prefixed = keys.map((key) => keyPrefix + key);
    if (prefixed.length === 1) {
      return (node.sendCommand(new Command('get', prefixed, { replyEncoding: 'utf8' })) as Promise<string | null>).then((value) => [value], orOneByOne(keys));
    }
    // A connection's first read sends the script in full (EVAL caches it on the node); later ones
    // name it by its SHA-1, and a node that lost its script cache (a restart) answers NOSCRIPT.
    const read = scripted.has(node)
      ? direct(node, prefixed, 'evalsha').catch((error: unknown) => (isNoScript(error) ? direct(node, prefixed, 'eval') : Promise.reject(error)))
      : direct(node, prefixed, 'eval').then((values) => {
        scripted.add(node);
        return values;
      });
    return read.catch(orOneByOne(keys));
  };
  return async (keys) => {
    const groups = new Map<string, { keys: string[]; at: number[] }>();
    keys.forEach((key, at) => {
      // Before the slot map is known every key lands in one group, read one by one.
      const node = client.slots[keySlot(keyPrefix + key)]?.[0] ?? '';
      const group = groups.get(node);
      if (group === undefined) groups.set(node, { keys: [key], at: [at] });
      else {
        group.keys.push(key);
        group.at.push(at);
      }
    });
    const values: (string | null)[] = new Array<string | null>(keys.length).fill(null);
    await Promise.all([...groups].map(async ([master, group]) => {
      const read = await readGroup(master, group.keys);
      group.at.forEach((at, i) => {
        values[at] = read[i] ?? null;
      });
    }));
    return values;
  };
}

/** The connection of the master at `host:port`, when it is up. */
function masterConnection(client: Cluster, master: string): Redis | undefined {
  for (const node of client.nodes('master')) {
    if (node.status === 'ready' && `${node.options.host}:${node.options.port}` === master) return node;
  }
  return undefined;
}

/**
 * The read script straight on the master's connection: one command, no pipeline object, no
 * routing (the slot map has already named the node; a stale map is caught by the node itself).
 */
function direct(node: Redis, prefixedKeys: readonly string[], how: 'evalsha' | 'eval'): Promise<(string | null)[]> {
  const script = how === 'evalsha' ? READ_MANY_SHA : READ_MANY;
  const command = new Command(how, [script, 1, prefixedKeys[0] as string, ...prefixedKeys], { replyEncoding: 'utf8' });
  return node.sendCommand(command) as Promise<(string | null)[]>;
}

const isNoScript = (error: unknown): boolean => error instanceof Error && error.message.startsWith('NOSCRIPT');
