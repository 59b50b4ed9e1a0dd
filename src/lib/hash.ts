/**
 * SHA-256 for seed derivation and content keys: deterministic, native, and collision-free for our
 * purposes; used as a pure function, never as a source of randomness. (Trace identity uses the
 * faster non-cryptographic digest of src/lib/digest.ts.)
 */
import { createHash } from 'node:crypto';

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
