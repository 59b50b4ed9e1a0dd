/**
 * Authentication: HTTP Basic with an api key pair (access key = the key's `publicValue`, secret key
 * = its secret). The key is found through its access key's lookup stream (the model's
 * `accessKeyStreamId`, written with every key): two reads by id per request, whatever the number of
 * keys. Secrets are stored only as sha256(salt + secret) (the model's `hashSecret`, over
 * src/lib/hash.ts) and compared in constant time; an unknown access key costs the same reads, hash
 * and comparison as a known one, so timing reveals neither which keys exist nor how much of a
 * secret matched.
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
 * Authenticates a request's `Authorization` header against the live api keys in the store. Throws
 * a 401 {@link ApiError} when credentials are missing, malformed or wrong, or when the key or its
 * account has been removed.
 */
export async function authenticate(store: EventStore, header: string | undefined): Promise<Caller> {
  const credentials = parseBasicAuth(header);
  if (credentials === null) throw unauthorized();
  const match = await findKey(store, credentials.access);
  const salt = match?.salt ?? DUMMY_SALT;
  // Both paths compute two hashes, so a miss takes as long as a hit.
  const dummy = hashSecret(DUMMY_SALT, '');
  const expected = match?.secretHash ?? dummy;
  const ok = constantTimeEqual(hashSecret(salt, credentials.secret), expected);
  if (match === null || !ok) throw unauthorized();
  const account = await store.get(match.accountId);
  const accountRow = account?.data as unknown as AccountRow | undefined;
  if (account?.type !== 'account' || accountRow === undefined || accountRow.removed !== null)
    throw unauthorized();
  return { accountId: match.accountId, admin: accountRow.kind === 'admin', keyId: match.id };
}
