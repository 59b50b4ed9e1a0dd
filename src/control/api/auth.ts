/**
 * Authentication: HTTP Basic with an api key pair (access key = the key's `publicValue`, secret key
 * = its secret). The key is found through its access key's lookup stream (the model's
 * `accessKeyStreamId`, written with every key): two reads by id per request, whatever the number of
 * keys. Secrets are stored only as sha256(salt + secret) (the model's `hashSecret`, over
 * src/lib/hash.ts) and compared in constant time; an unknown access key costs the same reads, hash
 * and comparison as a known one, so timing reveals neither which keys exist nor how much of a
 * secret matched.
 *
 * A secret a person chose (an admin secret from the environment) is stored with a slow hash
 * (scrypt, its parameters in the key's row). Verifying it costs tens of milliseconds, so a secret
 * once verified is remembered by its fast hash ({@link VerifiedSecrets}) and later requests with it
 * cost what the others do.
 */
import type { Random } from '../../ports/runtime.ts';
import type { EventStore } from '../../ports/event-store.ts';
import { hashSecret } from '../../model/decide.ts';
import {
  accessKeyStreamId,
  type AccessKeyRow,
  type AccountRow,
  type ApiKeyRow,
} from '../../model/resources.ts';
import { fail, type ApiError } from './errors.ts';

/** The authenticated caller of a request. */
export interface Caller {
  readonly accountId: string;
  /** True for an account of kind `admin`: sees every account's resources, manages hosts and accounts. */
  readonly admin: boolean;
  /** The api key used. */
  readonly keyId: string;
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const UPPER_ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const HEX = '0123456789abcdef';

function randomString(random: Random, alphabet: string, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet[random.int(0, alphabet.length - 1)];
  return out;
}

/** A new access key: 20 upper-case letters and digits. */
export function newAccessKey(random: Random): string {
  return randomString(random, UPPER_ALNUM, 20);
}

/** A new secret key: 40 letters and digits (about 238 bits). */
export function newSecretKey(random: Random): string {
  return randomString(random, ALNUM, 40);
}

/** A new salt: 32 hex digits. */
export function newSalt(random: Random): string {
  return randomString(random, HEX, 32);
}

/** Compares two strings in time that depends only on their lengths. */
export function constantTimeEqual(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  const n = Math.max(a.length, b.length);
  // Out-of-range charCodeAt gives NaN, which `^` treats as 0; the length term already differs.
  for (let i = 0; i < n; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** Access and secret key from an `Authorization: Basic …` header, or null when absent or malformed. */
export function parseBasicAuth(
  header: string | undefined,
): { access: string; secret: string } | null {
  if (header === undefined) return null;
  const m = /^\s*basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i.exec(header);
  if (m === null || m[1]!.length > 1024) return null;
  let decoded: string;
  try {
    decoded = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(m[1]!, 'base64'));
  } catch {
    return null;
  }
  const colon = decoded.indexOf(':');
  if (colon <= 0) return null;
  return { access: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
}

/** The 401 every authentication failure gets, whatever the reason (no oracle for attackers). */
export function unauthorized(message = 'valid api key credentials are required'): ApiError {
  return fail(401, 'Unauthorized', message, {
    detail: 'use HTTP Basic authentication with an access key and its secret key',
    headers: { 'www-authenticate': 'Basic realm="cloudbed", charset="UTF-8"' },
  });
}

/** A hash of nothing in particular, compared against when the access key is unknown. */
const DUMMY_SALT = '00000000000000000000000000000000';

/** What an unknown access key's secret is compared against. */
const DUMMY_HASH = hashSecret(DUMMY_SALT, '');

/** A stream that never exists, read instead of the key when the access key is unknown. */
const ABSENT_KEY = 'key-absent';

/** The live api key holding access key `access`, or null. Always two reads by id. */
async function findKey(store: EventStore, access: string): Promise<ApiKeyRow | null> {
  const index = await store.get(accessKeyStreamId(access));
  const keyId = index?.type === 'accessKey' ? (index.data as unknown as AccessKeyRow).keyId : null;
  const key = await store.get(keyId ?? ABSENT_KEY);
  if (key?.type !== 'apiKey') return null;
  const row = key.data as unknown as ApiKeyRow;
  return row.publicValue === access && row.removed === null ? row : null;
}

/**
 * Secrets of slow-hashed keys verified so far, by key: the fast hash of the secret that matched and
 * the stored hash it matched. Bounded; one per API instance.
 */
export class VerifiedSecrets {
  private readonly byKey = new Map<string, { readonly fast: string; readonly stored: string }>();

  constructor(private readonly max = 1024) {}

  /** True when `secret` already verified against `key`'s current stored hash. */
  has(key: ApiKeyRow, secret: string): boolean {
    const known = this.byKey.get(key.id);
    return (
      known !== undefined &&
      known.stored === key.secretHash &&
      constantTimeEqual(known.fast, hashSecret(key.salt, secret))
    );
  }

  remember(key: ApiKeyRow, secret: string): void {
    if (this.byKey.size >= this.max && !this.byKey.has(key.id)) {
      const oldest = this.byKey.keys().next().value as string;
      this.byKey.delete(oldest);
    }
    this.byKey.set(key.id, { fast: hashSecret(key.salt, secret), stored: key.secretHash });
  }
}

/** True when `secret` is `key`'s (slow-hashed keys: remembered once verified). */
function verify(key: ApiKeyRow, secret: string, verified: VerifiedSecrets | undefined): boolean {
  if (key.kdf === null) return constantTimeEqual(hashSecret(key.salt, secret), key.secretHash);
  if (verified?.has(key, secret) === true) return true;
  const ok = constantTimeEqual(hashSecret(key.salt, secret, key.kdf), key.secretHash);
  if (ok) verified?.remember(key, secret);
  return ok;
}

/**
 * Authenticates a request's `Authorization` header against the live api keys in the store. Throws
 * a 401 {@link ApiError} when credentials are missing, malformed or wrong, or when the key or its
 * account has been removed.
 */
export async function authenticate(
  store: EventStore,
  header: string | undefined,
  verified?: VerifiedSecrets,
): Promise<Caller> {
  const credentials = parseBasicAuth(header);
  if (credentials === null) throw unauthorized();
  const match = await findKey(store, credentials.access);
  // A miss hashes and compares as a (fast-hashed) hit does, so it takes as long.
  const ok =
    match === null
      ? constantTimeEqual(hashSecret(DUMMY_SALT, credentials.secret), DUMMY_HASH)
      : verify(match, credentials.secret, verified);
  if (match === null || !ok) throw unauthorized();
  const account = await store.get(match.accountId);
  const accountRow = account?.data as unknown as AccountRow | undefined;
  if (account?.type !== 'account' || accountRow === undefined || accountRow.removed !== null)
    throw unauthorized();
  return { accountId: match.accountId, admin: accountRow.kind === 'admin', keyId: match.id };
}
