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

/** Reads the body, keeping at most `limit + 1` bytes. `truncated` when more was sent. */
function readBody(
  request: IncomingMessage,
  limit: number,
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

async function serve(
  options: HttpServerOptions,
  limit: number,
  fallbackBase: () => string,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  let closeAfter = false;
  let result: HttpHandlerResponse;
  try {
    const { body, truncated } = await readBody(request, limit);
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
  } catch {
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
      void serve(options, limit, fallbackBase, request, response);
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
