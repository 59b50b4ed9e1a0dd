/**
 * A fast, non-cryptographic 128-bit digest of a stream of JSON-like values, for trace identity.
 *
 * The trace hashes every step of a run, so its digest sits on the simulator's hottest path. Hashing
 * canonical JSON text with SHA-256 cost more than the rest of a kernel step together; this digest
 * feeds the values' fields directly — type tags, lengths, UTF-16 code units two to a word, numbers
 * as int32 or IEEE-754 words — into the block function of MurmurHash3_x86_128, with no text and no
 * allocation. Objects are fed with their keys in sorted order and `undefined` members dropped, so two
 * values equal as data digest equally whatever their key order, as canonical JSON serialises
 * equally (src/lib/canonical-json.ts): the same values, the same identity.
 *
 * It is an identity, not a defence: nothing adversarial chooses trace contents. 128 bits of state
 * make an accidental collision between two different runs negligible.
 */
import { AssertionError } from './assert.ts';

const C1 = 0x239b961b;
const C2 = 0xab0e9789;
const C3 = 0x38b34ae5;
const C4 = 0xa1e38b93;

/** Type tags: each value starts with one, so `["a"]` and `"a"` or `1` and `"1"` differ. */
const TAG_NULL = 0x4e554c4c;
const TAG_TRUE = 0x54525545;
const TAG_FALSE = 0x46414c53;
const TAG_INT = 0x494e5433;
const TAG_FLOAT = 0x464c5436;
const TAG_STRING = 0x53545247;
const TAG_ARRAY = 0x41525259;
const TAG_OBJECT = 0x4f424a43;
const TAG_END = 0x454e4421;

const rotl = (x: number, r: number): number => (x << r) | (x >>> (32 - r));

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

const floatView = new Float64Array(1);
const floatWords = new Uint32Array(floatView.buffer);

/** A streaming 128-bit digest; {@link Digest128.hex} can be read at any point and the stream goes on. */
export class Digest128 {
  private h1 = 0x9e3779b9;
  private h2 = 0x7f4a7c15;
  private h3 = 0xf39cc060;
  private h4 = 0x5ced1a0b;
  private k1 = 0;
  private k2 = 0;
  private k3 = 0;
  /** Words in the current block (0..3). */
  private fill = 0;
  /** Words fed so far (may pass 2^32; the finaliser mixes both halves). */
  private words = 0;

  /** Feeds one 32-bit word. */
  word(w: number): void {
    this.words++;
    switch (this.fill) {
      case 0:
        this.k1 = w;
        this.fill = 1;
        return;
      case 1:
        this.k2 = w;
        this.fill = 2;
        return;
      case 2:
        this.k3 = w;
        this.fill = 3;
        return;
      default:
        this.fill = 0;
        this.block(this.k1, this.k2, this.k3, w);
    }
  }

  /** Feeds four 32-bit words; on a block boundary, as one block with no buffering. */
  words4(a: number, b: number, c: number, d: number): void {
    if (this.fill !== 0) {
      this.word(a);
      this.word(b);
      this.word(c);
      this.word(d);
      return;
    }
    this.words += 4;
    this.block(a, b, c, d);
  }

  private block(k1: number, k2: number, k3: number, k4: number): void {
    let { h1, h2, h3, h4 } = this;
    k1 = Math.imul(rotl(Math.imul(k1, C1), 15), C2);
    h1 ^= k1;
    h1 = (Math.imul(rotl(h1, 19) + h2, 5) + 0x561ccd1b) | 0;
    k2 = Math.imul(rotl(Math.imul(k2, C2), 16), C3);
    h2 ^= k2;
    h2 = (Math.imul(rotl(h2, 17) + h3, 5) + 0x0bcaa747) | 0;
    k3 = Math.imul(rotl(Math.imul(k3, C3), 17), C4);
    h3 ^= k3;
    h3 = (Math.imul(rotl(h3, 15) + h4, 5) + 0x96cd1c35) | 0;
    k4 = Math.imul(rotl(Math.imul(k4, C4), 18), C1);
    h4 ^= k4;
    h4 = (Math.imul(rotl(h4, 13) + h1, 5) + 0x32ac3b17) | 0;
    this.h1 = h1;
    this.h2 = h2;
    this.h3 = h3;
    this.h4 = h4;
  }

  /** Feeds a string: tag, length, then its UTF-16 code units two to a word. */
  string(s: string): void {
    const n = s.length;
    this.word(TAG_STRING);
    this.word(n);
    let i = 0;
    for (; i + 1 < n; i += 2) this.word(s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16));
    if (i < n) this.word(s.charCodeAt(i));
  }

  /** Feeds a finite number: int32 values as one word, others as their IEEE-754 bits. */
  number(x: number): void {
    if ((x | 0) === x) {
      this.word(TAG_INT);
      this.word(x);
    } else {
      if (!Number.isFinite(x)) throw new AssertionError(`digest: non-finite number ${x}`);
      floatView[0] = x === 0 ? 0 : x; // -0 as 0, as JSON writes it
      this.word(TAG_FLOAT);
      this.word(floatWords[0] as number);
      this.word(floatWords[1] as number);
    }
  }

  /** Feeds any JSON-like value, canonically (sorted keys, `undefined` members dropped). */
  value(v: unknown, depth = 0): void {
    if (depth > 64) throw new AssertionError('digest: nesting deeper than 64');
    if (v === null) {
      this.word(TAG_NULL);
      return;
    }
    switch (typeof v) {
      case 'string':
        this.string(v);
        return;
      case 'number':
        this.number(v);
        return;
      case 'boolean':
        this.word(v ? TAG_TRUE : TAG_FALSE);
        return;
      case 'bigint':
        this.string(v.toString());
        return;
      case 'object': {
        if (Array.isArray(v)) {
          this.word(TAG_ARRAY);
          for (const item of v as unknown[]) this.value(item ?? null, depth + 1);
          this.word(TAG_END);
          return;
        }
        const record = v as Record<string, unknown>;
        this.word(TAG_OBJECT);
        for (const k of Object.keys(record).sort()) {
          const member = record[k];
          if (member === undefined) continue;
          this.string(k);
          this.value(member, depth + 1);
        }
        this.word(TAG_END);
        return;
      }
      default:
        throw new AssertionError(`digest: cannot digest ${typeof v}`);
    }
  }

  /** The digest so far as 32 hex digits. Does not disturb the stream. */
  hex(): string {
    let { h1, h2, h3, h4 } = this;
    // The partial block, as MurmurHash3's tail: mixed in without the rotate-and-add step.
    if (this.fill >= 3) h3 ^= Math.imul(rotl(Math.imul(this.k3, C3), 17), C4);
    if (this.fill >= 2) h2 ^= Math.imul(rotl(Math.imul(this.k2, C2), 16), C3);
    if (this.fill >= 1) h1 ^= Math.imul(rotl(Math.imul(this.k1, C1), 15), C2);
    const low = this.words >>> 0;
    const high = Math.floor(this.words / 2 ** 32) >>> 0;
    h1 ^= low;
    h2 ^= high;
    h3 ^= low;
    h4 ^= high;
    h1 = (h1 + h2 + h3 + h4) | 0;
    h2 = (h2 + h1) | 0;
    h3 = (h3 + h1) | 0;
    h4 = (h4 + h1) | 0;
    h1 = fmix(h1);
    h2 = fmix(h2);
    h3 = fmix(h3);
    h4 = fmix(h4);
    h1 = (h1 + h2 + h3 + h4) | 0;
    h2 = (h2 + h1) | 0;
    h3 = (h3 + h1) | 0;
    h4 = (h4 + h1) | 0;
    const hex = (x: number): string => (x >>> 0).toString(16).padStart(8, '0');
    return hex(h1) + hex(h2) + hex(h3) + hex(h4);
  }
}
