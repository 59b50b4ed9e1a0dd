/**
 * SHA-256 for seed derivation and content keys: deterministic, native, and collision-free for our
 * purposes; used as a pure function, never as a source of randomness. (Trace identity uses the
 * faster non-cryptographic digest of src/lib/digest.ts.)
 */
import { createHash, scryptSync } from 'node:crypto';

/** SHA-256 of a string, hex encoded. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** SHA-256 of a string, base64 encoded (as content security policies name inline content). */
export function sha256Base64(text: string): string {
  return createHash('sha256').update(text).digest('base64');
}

/**
 * scrypt of `secret` with `salt` (RFC 7914), hex encoded: a slow, memory-hard hash for secrets a
 * person chose. Deterministic. Costs about 128 × n × r bytes and tens of milliseconds at n = 2^15.
 */
export function scryptHex(
  secret: string,
  salt: string,
  cost: { readonly n: number; readonly r: number; readonly p: number },
  keyLength = 32,
): string {
  const maxmem = 256 * cost.n * cost.r + 1024 * 1024;
  return scryptSync(secret, salt, keyLength, { N: cost.n, r: cost.r, p: cost.p, maxmem }).toString(
    'hex',
  );
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
