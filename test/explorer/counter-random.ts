/**
 * Randomness for explorer worlds: counter bytes, one stream per owner (a protocol, or a code's
 * sender). Distinct on every draw and across owners, identical in every run (so a replay is a
 * replay), and the same whatever order the owners draw in (so swapping two independent calls
 * changes nothing, which the explorer's reduction relies on).
 */
import type { Random } from '../../src/ports/random.ts';

export class CounterRandom implements Random {
  readonly #stream: number;
  #drawn = 0;

  constructor(stream: number) {
    this.#stream = stream;
  }

  bytes(length: number): Buffer {
    const bytes = Buffer.alloc(length);
    bytes.writeUInt32BE(++this.#drawn);
    bytes.writeUInt16BE(this.#stream, 4);
    return bytes;
  }

  /** `<stream><draw>` in decimal (within the range): two owners never draw the same number. */
  int(min: number, max: number): number {
    return min + ((this.#stream * 1000 + ++this.#drawn) % (max - min));
  }
}

/** One CounterRandom per owner, the streams numbered from 1 in the order the owners first ask. */
export class CounterRandoms {
  readonly #randoms = new Map<string, CounterRandom>();

  of(owner: string): CounterRandom {
    let random = this.#randoms.get(owner);
    if (random === undefined) {
      random = new CounterRandom(this.#randoms.size + 1);
      this.#randoms.set(owner, random);
    }
    return random;
  }
}
