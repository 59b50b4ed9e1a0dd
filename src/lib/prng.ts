/**
 * Seeded pseudo-random numbers: xoshiro128** with named forks. Every component draws from its own
 * fork (`root.fork('bus')`), derived from the root seed and the fork's path, so a new draw in one
 * component never shifts the stream of another. Not for cryptography.
 */
import { assert, assertProbability } from './assert.ts';
import { seedWords } from './hash.ts';

/** Largest seed accepted: seeds are non-negative safe integers. */
export const SEED_MAX = Number.MAX_SAFE_INTEGER;

/** A deterministic random stream. */
export class Prng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /**
   * @param seed root seed, a non-negative safe integer
   * @param path the fork path (empty for the root); forks of the same path on the same seed are equal
   */
  constructor(
    readonly seed: number,
    readonly path = '',
  ) {
    assert(
      Number.isSafeInteger(seed) && seed >= 0,
      `seed must be a non-negative safe integer, got ${seed}`,
    );
    [this.s0, this.s1, this.s2, this.s3] = seedWords(`cloudbed/${seed}/${path}`);
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** An independent stream named `name` under this one. */
  fork(name: string): Prng {
    assert(
      name.length > 0 && !name.includes('/'),
      `fork name must be non-empty without '/': ${name}`,
    );
    return new Prng(this.seed, this.path === '' ? name : `${this.path}/${name}`);
  }

  /** The next 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A float in [0, 1) with 53 bits of randomness. */
  float(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** An integer in [min, max], inclusive, without modulo bias. */
  int(min: number, max: number): number {
    assert(
      Number.isSafeInteger(min) && Number.isSafeInteger(max) && min <= max,
      `bad int range [${min}, ${max}]`,
    );
    const span = max - min + 1;
    if (span <= 0x1_0000_0000) {
      const limit = 0x1_0000_0000 - (0x1_0000_0000 % span);
      for (;;) {
        const x = this.nextUint32();
        if (x < limit) return min + (x % span);
      }
    }
    return min + Math.floor(this.float() * span);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    assertProbability(p);
    if (p === 0) return false;
    if (p === 1) return true;
    return this.float() < p;
  }

  /** A uniformly chosen element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    assert(items.length > 0, 'pick from an empty array');
    return items[this.int(0, items.length - 1)] as T;
  }

  /** An exponentially distributed value with the given mean. */
  exponential(mean: number): number {
    assert(mean >= 0, `mean must be >= 0, got ${mean}`);
    return -Math.log(1 - this.float()) * mean;
  }

  /** A log-normally distributed value whose median is `median` (spread `sigma` in log space). */
  logNormal(median: number, sigma: number): number {
    assert(median > 0 && sigma >= 0, `bad log-normal median=${median} sigma=${sigma}`);
    // Box–Muller; one draw per call keeps the stream simple to reason about.
    const u1 = 1 - this.float();
    const u2 = this.float();
    const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    return median * Math.exp(sigma * z);
  }

  /** A shuffled copy of `items` (Fisher–Yates). */
  shuffle<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      const tmp = out[i] as T;
      out[i] = out[j] as T;
      out[j] = tmp;
    }
    return out;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
