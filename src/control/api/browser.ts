/**
 * What keeps the API safe to open in a browser. The API authenticates with HTTP Basic, which a
 * browser sends again by itself on any request to the same origin — including one a foreign page
 * makes it send (a form posted cross-site). So:
 *
 * - **Cross-site writes are refused.** A request that can change state (any method but GET, HEAD
 *   and OPTIONS) from a browser carries `Origin` (or, from older browsers, `Referer`, or at least
 *   `Sec-Fetch-Site`); unless that names this API's own origin or one on the CORS allow-list, it
 *   is refused with 403 before authentication. Clients that are not browsers send none of them and
 *   are not affected.
 * - **`?_method=` only from this API's own pages**: a POST overrides its method only when it comes
 *   from the same origin, as the HTML forms do.
 * - **Headers**: every response is `nosniff`; HTML pages forbid scripts, framing and foreign form
 *   targets through `Content-Security-Policy` (their one stylesheet is allowed by its hash).
 * - **CORS** for JSON clients on other origins: only origins on the allow-list (exact
 *   `scheme://host[:port]`), which get `Access-Control-Allow-Origin` with credentials, and whose
 *   preflight `OPTIONS` is answered without authentication.
 */
import { sha256Base64 } from '../../lib/hash.ts';
import { HTML_STYLE } from './html.ts';
import { fail } from './errors.ts';
import type { ApiRequest } from './types.ts';

/** Methods that cannot change state. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Every method the API answers, for `Allow` and preflights. */
export const ALLOWED_METHODS = 'GET, HEAD, POST, PUT, DELETE, OPTIONS';

/** Request headers a cross-origin JSON client may send. */
const ALLOWED_HEADERS = 'authorization, content-type, accept, if-match, if-none-match';

/** Response headers a cross-origin JSON client may read. */
const EXPOSED_HEADERS = 'location, etag, x-api-schemas, retry-after';

/** Seconds a browser may cache a preflight answer. */
const PREFLIGHT_MAX_AGE_SECONDS = 600;

const STYLE_HASH = `sha256-${sha256Base64(HTML_STYLE)}`;

/** The policy of every HTML page: nothing but its own stylesheet; no framing, no foreign forms. */
export const HTML_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `style-src '${STYLE_HASH}'`,
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** Headers of every response; HTML pages get the content security policy too. */
export function securityHeaders(html: boolean): Record<string, string> {
  const headers: Record<string, string> = {
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'same-origin',
  };
  if (html) {
    headers['content-security-policy'] = HTML_CONTENT_SECURITY_POLICY;
    headers['x-frame-options'] = 'DENY';
  }
  return headers;
}

/** The origin of a URL-valued header, or null when it is not an http(s) URL. */
function originOf(value: string): string | null {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : null;
  } catch {
    return null;
  }
}

/** True when `text` is an origin exactly as browsers send it: `http(s)://host[:port]`, no path. */
export function isOrigin(text: string): boolean {
  return originOf(text) === text;
}

/**
 * Where a browser says the request comes from: `same` (this API's origin), `allowed` (on the CORS
 * list), `foreign`, or `none` (no browser header at all: a script or curl).
 */
export type RequestSource = 'same' | 'allowed' | 'foreign' | 'none';

/** The {@link RequestSource} of `request`, on an API whose own origin is `own`. */
export function requestSource(
  request: ApiRequest,
  own: string,
  corsOrigins: readonly string[],
): RequestSource {
  const headers = request.headers;
  const origin = headers['origin'];
  const referer = headers['referer'];
  const claimed =
    origin !== undefined ? originOf(origin) : referer !== undefined ? originOf(referer) : undefined;
  if (claimed === undefined) {
    // No Origin, no Referer: a browser still says whether the request crossed sites.
    const site = headers['sec-fetch-site'];
    return site === 'cross-site' || site === 'same-site' ? 'foreign' : 'none';
  }
  if (claimed === own) return 'same';
  if (claimed !== null && corsOrigins.includes(claimed)) return 'allowed';
  return 'foreign';
}

/** Refuses a state-changing request from a foreign origin (403, before authentication). */
export function refuseCrossSite(method: string, source: RequestSource, request: ApiRequest): void {
  if (SAFE_METHODS.has(method.toUpperCase()) || source !== 'foreign') return;
  const from = (request.headers['origin'] ?? request.headers['referer'] ?? 'another site').slice(
    0,
    100,
  );
  throw fail(
    403,
    'PermissionDenied',
    `a ${method.slice(0, 10).toUpperCase()} from ${from} is refused: only this API's own pages and the allowed origins may change state from a browser`,
  );
}

/**
 * The method after `?_method=`: honoured on a POST from this API's own pages only (HTML forms can
 * only GET and POST); elsewhere it is refused, never silently applied or ignored.
 */
export function effectiveMethod(raw: string, url: URL, source: RequestSource): string {
  const method = raw.toUpperCase();
  const override = url.searchParams.get('_method');
  if (method !== 'POST' || override === null || override === '') return method;
  if (source !== 'same')
    throw fail(
      422,
      'InvalidOption',
      '_method is honoured only on form posts from the API’s own pages; send the HTTP method itself',
      { fieldName: '_method' },
    );
  return override.toUpperCase();
}

/** CORS headers of a response to an allowed origin (none otherwise). */
export function corsHeaders(request: ApiRequest, source: RequestSource): Record<string, string> {
  if (source !== 'allowed') return {};
  return {
    'access-control-allow-origin': request.headers['origin'] ?? '',
    'access-control-allow-credentials': 'true',
    'access-control-expose-headers': EXPOSED_HEADERS,
    vary: 'Origin',
  };
}

/** The answer to `OPTIONS`: the methods, and a preflight's permissions for an allowed origin. */
export function optionsHeaders(request: ApiRequest, source: RequestSource): Record<string, string> {
  const headers: Record<string, string> = { allow: ALLOWED_METHODS };
  if (source === 'allowed' && request.headers['access-control-request-method'] !== undefined) {
    Object.assign(headers, corsHeaders(request, source), {
      'access-control-allow-methods': ALLOWED_METHODS,
      'access-control-allow-headers': ALLOWED_HEADERS,
      'access-control-max-age': String(PREFLIGHT_MAX_AGE_SECONDS),
    });
  }
  return headers;
}
