/**
 * The HTTP server adapter: a thin node:http shell around a request handler such as the API's
 * `createApi(deps).handle`. It turns each HTTP request into `{ method, url (absolute), headers
 * (lower case), body }`, awaits the handler and writes its `{ status, headers, body }` back, and
 * nothing more — routing, errors, content negotiation and limits live in the handler, so the
 * simulator (which hands requests in-process) and a real deployment behave the same.
 *
 * The shapes are declared here rather than imported because adapters sit beside the control plane,
 * not above it (layer rule); they are structurally identical to ApiRequest/ApiResponse in
 * src/control/api/types.ts, so `handle: api.handle` type-checks without conversion.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request as the handler receives it (same shape as the API's ApiRequest). */
export interface HttpHandlerRequest {
  readonly method: string;
  /** Absolute URL: scheme, the Host the client used (or `publicUrl`), path and query. */
  readonly url: string;
  /** Lower-case names; repeated headers joined with `, `. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

/** A response from the handler (same shape as the API's ApiResponse). */
export interface HttpHandlerResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /** Who made the request (an account id), for the access log; never sent. */
  readonly account?: string;
}

/** Options of {@link startHttpServer}. */
export interface HttpServerOptions {
  readonly handle: (request: HttpHandlerRequest) => Promise<HttpHandlerResponse>;
  /** Interface to listen on; default `127.0.0.1`. */
  readonly host?: string;
  /** Port; default 0 (an ephemeral port, see {@link HttpServer.port}). */
  readonly port?: number;
  /**
   * Largest body buffered, in bytes (default 1 MiB, the API's default limit). A longer body is
   * cut at `maxBodyBytes + 1` bytes and handed on, so the handler answers its own 413; the rest
   * is discarded and the connection closed.
   */
  readonly maxBodyBytes?: number;
  /**
   * The public base URL (`https://cloud.example.com`) when the server sits behind a proxy: links
   * are built from it instead of the Host header. Default: `http://<Host header>`.
   */
  readonly publicUrl?: string;
  /** Time allowed for a whole request, ms; default 30 000. */
  readonly requestTimeoutMs?: number;
  /**
   * Most requests in flight at once (read, handled, not yet answered); beyond, 503 with
   * `Retry-After` and the body unread. Default {@link ADMISSION_DEFAULTS}.
   */
  readonly maxInFlight?: number;
  /** Most requests in flight on one connection (pipelined); beyond, 429. */
  readonly maxInFlightPerConnection?: number;
  /** Most body bytes buffered over all requests in flight; beyond, 503. */
  readonly maxBufferedBytes?: number;
  /**
   * Receives one access log line per request once its response is sent: time, method, path,
   * status, milliseconds, account (or `-`). Default: no log.
   */
  readonly accessLog?: (line: string) => void;
}

/** Default bounds of what the server holds at once. */
export const ADMISSION_DEFAULTS = {
  maxInFlight: 256,
  maxInFlightPerConnection: 8,
  maxBufferedBytes: 64 * 1024 * 1024,
} as const;

/** Seconds a refused client is asked to wait before it tries again. */
const RETRY_AFTER_SECONDS = 1;

/**
 * What the server holds at once: requests in flight, per connection and in all, and the body bytes
 * they buffered. Every request is released when its response is sent, however it ended.
 */
class Admission {
  private inFlight = 0;
  private buffered = 0;
  private readonly perSocket = new WeakMap<object, number>();

  constructor(
    private readonly maxInFlight: number,
    private readonly maxPerConnection: number,
    private readonly maxBufferedBytes: number,
  ) {}

  /** Admits a request on `socket`, or says why not (429 for the connection, 503 for the server). */
  admit(socket: object): 429 | 503 | null {
    const mine = this.perSocket.get(socket) ?? 0;
    if (mine >= this.maxPerConnection) return 429;
    if (this.inFlight >= this.maxInFlight) return 503;
    this.perSocket.set(socket, mine + 1);
    this.inFlight++;
    return null;
  }

  release(socket: object, bytes: number): void {
    this.perSocket.set(socket, (this.perSocket.get(socket) ?? 1) - 1);
    this.inFlight--;
    this.buffered -= bytes;
  }

  /** Reserves `bytes` more of buffered body; false when that would pass the bound. */
  reserve(bytes: number): boolean {
    if (this.buffered + bytes > this.maxBufferedBytes) return false;
    this.buffered += bytes;
    return true;
  }
}

/** A running server. */
export interface HttpServer {
  /** `http://host:port` it listens on. */
  readonly url: string;
  readonly port: number;
  /** Stops accepting connections and closes idle ones; resolves when the server is closed. */
  close(): Promise<void>;
}

const HOST_HEADER = /^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/;

function joinHeaders(request: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined) continue;
    headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

/** The server holds too many body bytes already: the request is refused, its body unread. */
class BufferFull extends Error {}

/**
 * Reads the body, keeping at most `limit + 1` bytes (`truncated` when more was sent), and reserves
 * what it holds in `admission` (added up in `reserved`); rejects with {@link BufferFull} when the
 * server holds too much already.
 */
function readBody(
  request: IncomingMessage,
  limit: number,
  admission: Admission,
  reserved: { bytes: number },
): Promise<{ body: Uint8Array; truncated: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (truncated: boolean) => {
      if (done) return;
      done = true;
      resolve({ body: new Uint8Array(Buffer.concat(chunks)), truncated });
    };
    request.on('data', (chunk: Buffer) => {
      if (done) return;
      // Twice the chunk: it is held as a chunk, then once more in the concatenated body.
      if (!admission.reserve(2 * chunk.length)) {
        done = true;
        reject(new BufferFull());
        return;
      }
      reserved.bytes += 2 * chunk.length;
      const room = limit + 1 - size;
      if (chunk.length >= room) {
        chunks.push(chunk.subarray(0, room));
        size += room;
        // Enough to prove the body is too large: stop buffering, let the handler answer 413.
        finish(true);
        return;
      }
      chunks.push(chunk);
      size += chunk.length;
    });
    request.on('end', () => finish(false));
    request.on('error', (error) => {
      if (!done) {
        done = true;
        reject(error);
      }
    });
  });
}

function baseUrl(options: HttpServerOptions, request: IncomingMessage, fallback: string): string {
  if (options.publicUrl !== undefined) return new URL(options.publicUrl).origin;
  const host = request.headers.host;
  return host !== undefined && HOST_HEADER.test(host) ? `http://${host}` : fallback;
}

/** `2026-12-08T02:50:01.123Z GET /v1/volumes?limit=5 200 3.2ms acct-1a2b3c4d` */
function accessLine(
  request: IncomingMessage,
  status: number,
  ms: number,
  account: string | undefined,
): string {
  const method = (request.method ?? '-').slice(0, 16).replace(/[^A-Za-z]/g, '?');
  // The path as sent, cut short and with control characters shown, so one request is one line.
  let path = '';
  for (const c of (request.url ?? '-').slice(0, 300)) {
    const code = c.charCodeAt(0);
    path += code <= 0x20 || code === 0x7f ? '?' : c;
  }
  return `${new Date().toISOString()} ${method} ${path} ${status} ${ms.toFixed(1)}ms ${account ?? '-'}`;
}

/** A refusal by the server itself, before the API sees the request. */
function refusal(status: 429 | 503, message: string): HttpHandlerResponse {
  return {
    status,
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'retry-after': String(RETRY_AFTER_SECONDS),
    },
    body: JSON.stringify({
      type: 'error',
      status,
      code: status === 429 ? 'TooManyRequests' : 'ServiceUnavailable',
      message,
    }),
  };
}

async function serve(
  options: HttpServerOptions,
  limit: number,
  admission: Admission,
  fallbackBase: () => string,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const socket = request.socket;
  const refused = admission.admit(socket);
  if (refused !== null) {
    const message =
      refused === 429
        ? 'too many requests in flight on this connection'
        : 'the server has too many requests in flight';
    reply(request, response, refusal(refused, message), true);
    return;
  }
  const reserved = { bytes: 0 };
  // Released when the response is sent (or the connection is gone), however the request ended.
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    admission.release(socket, reserved.bytes);
  };
  response.once('finish', release);
  response.once('close', release);
  const started = performance.now();
  let account: string | undefined;
  if (options.accessLog !== undefined) {
    const log = options.accessLog;
    response.once('finish', () =>
      log(accessLine(request, response.statusCode, performance.now() - started, account)),
    );
  }
  let closeAfter: boolean;
  let result: HttpHandlerResponse;
  try {
    const { body, truncated } = await readBody(request, limit, admission, reserved);
    closeAfter = truncated;
    const target = request.url ?? '/';
    // Only origin-form targets (`/path?query`); absolute-form and `*` are not for this server.
    const url = target.startsWith('/')
      ? `${baseUrl(options, request, fallbackBase())}${target}`
      : 'invalid:';
    result = await options.handle({
      method: request.method ?? 'GET',
      url,
      headers: joinHeaders(request),
      body,
    });
    account = result.account;
  } catch (error) {
    if (error instanceof BufferFull) {
      reply(
        request,
        response,
        refusal(503, 'the server holds too many request bodies; try again shortly'),
        true,
      );
      return;
    }
    // The handler never rejects by contract; an I/O error while reading the body lands here.
    closeAfter = true;
    result = {
      status: 400,
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify({
        type: 'error',
        status: 400,
        code: 'InvalidBodyContent',
        message: 'the request could not be read',
      }),
    };
  }
  reply(request, response, result, closeAfter);
}

/** Sends `result`; with `closeAfter`, closes the connection and discards what is left of the body. */
function reply(
  request: IncomingMessage,
  response: ServerResponse,
  result: HttpHandlerResponse,
  closeAfter: boolean,
): void {
  if (response.headersSent || response.destroyed) return;
  const headers: Record<string, string> = { ...result.headers };
  if (closeAfter) headers['connection'] = 'close';
  response.writeHead(result.status, headers);
  response.end(result.body, () => {
    if (closeAfter) request.socket.destroy();
  });
  // Discard whatever of the body was not read.
  if (closeAfter) request.resume();
}

/** Starts an HTTP server in front of `options.handle`. */
export function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const limit = options.maxBodyBytes ?? 1024 * 1024;
  const host = options.host ?? '127.0.0.1';
  const admission = new Admission(
    options.maxInFlight ?? ADMISSION_DEFAULTS.maxInFlight,
    options.maxInFlightPerConnection ?? ADMISSION_DEFAULTS.maxInFlightPerConnection,
    options.maxBufferedBytes ?? ADMISSION_DEFAULTS.maxBufferedBytes,
  );
  let server: Server | undefined = undefined;
  const fallbackBase = () => {
    const address = server?.address() as AddressInfo | null | undefined;
    const h = address === undefined || address === null ? host : address.address;
    const port = address?.port ?? 0;
    return `http://${h.includes(':') ? `[${h}]` : h}:${port}`;
  };
  server = createServer(
    { requestTimeout: options.requestTimeoutMs ?? 30_000 },
    (request, response) => {
      void serve(options, limit, admission, fallbackBase, request, response);
    },
  );
  server.on('clientError', (_error, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  const listening = server;
  return new Promise((resolve, reject) => {
    listening.once('error', reject);
    listening.listen(options.port ?? 0, host, () => {
      listening.off('error', reject);
      const url = fallbackBase();
      const address = listening.address() as AddressInfo;
      resolve({
        url,
        port: address.port,
        close: () =>
          new Promise<void>((done, fail) => {
            listening.close((error) => (error === undefined ? done() : fail(error)));
            listening.closeIdleConnections();
          }),
      });
    });
  });
}
