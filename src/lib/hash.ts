/**
 * Hashing for trace identity and seed derivation. SHA-256 is deterministic, fast in Node's native
 * implementation, and collision-free for our purposes; it is used here as a pure function, never as
 * a source of randomness.
 */
import { createHash, type Hash } from 'node:crypto';

/** An incremental SHA-256 over a sequence of strings, each framed by its length. */
export class RollingHash {
  private readonly hash: Hash = createHash('sha256');
  private count = 0;

  /** Adds one record; framing makes `["ab","c"]` and `["a","bc"]` hash differently. */
  update(record: string): void {
    this.hash.update(`${record.length}:`);
    this.hash.update(record);
    this.count++;
  }

  /** Number of records added so far. */
  get records(): number {
    return this.count;
  }

  /** Hex digest of everything added so far; the hash can keep growing afterwards. */
  digest(): string {
    return this.hash.copy().digest('hex');
  }
}

/** SHA-256 of a string, hex encoded. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Four 32-bit words derived from a string, for seeding PRNG streams. */
export function seedWords(text: string): [number, number, number, number] {
  const digest = createHash('sha256').update(text).digest();
  return [
    digest.readUInt32LE(0),
    digest.readUInt32LE(4),
    digest.readUInt32LE(8),
    digest.readUInt32LE(12),
  ];
}
