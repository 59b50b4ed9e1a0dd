/**
 * The transport-independent shapes of the public API: a request goes in, a response comes out. The
 * simulator hands requests to the router in-process; the HTTP server adapter
 * (src/adapters/http-server.ts) converts node:http messages to and from these, and nothing else.
 */
import type { Bus } from '../../ports/bus.ts';
import type { EventStore } from '../../ports/event-store.ts';
import type { Random, Runtime } from '../../ports/runtime.ts';

/** One HTTP request. */
export interface ApiRequest {
  /** The HTTP method, any case (`GET`, `post`). */
  readonly method: string;
  /**
   * The absolute URL as the client addressed it (`http://api.example:8080/v1/volumes?limit=5`):
   * its origin is the base of every link in the response.
   */
  readonly url: string;
  /** Header names in lower case; repeated headers joined with `, `. */
  readonly headers: Readonly<Record<string, string>>;
  /** The raw body; empty for none. */
  readonly body: Uint8Array | string;
}

/** One HTTP response. */
export interface ApiResponse {
  readonly status: number;
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /** The account that made the request, once authenticated: for access logs, never sent. */
  readonly account?: string;
}

/** Bounds on requests; defaults in {@link DEFAULT_LIMITS}. */
export interface ApiLimits {
  /** Largest body accepted, in bytes (413 above). */
  readonly maxBodyBytes: number;
  /** Longest URL accepted, in characters (414 above). */
  readonly maxUrlLength: number;
  /** Attempts of a write that races another writer when the client sent no `rev` (>= 1). */
  readonly writeAttempts: number;
}

/** Default request bounds: 1 MiB bodies, 8 KiB URLs, 3 write attempts. */
export const DEFAULT_LIMITS: ApiLimits = {
  maxBodyBytes: 1024 * 1024,
  maxUrlLength: 8192,
  writeAttempts: 3,
};

/** What the API needs from its environment. */
export interface ApiDeps {
  /** Clock (event times, created dates), Ids (resource ids), Log. */
  readonly runtime: Runtime;
  /**
   * Where access keys, secret keys and salts are drawn from. Default `runtime.random`: in a
   * simulated run, its seeded fork, so the run replays exactly; `cloudbed serve` passes the
   * system's CSPRNG, because a playground's seed can be guessed and would give away every secret.
   */
  readonly secrets?: Random;
  /**
   * Origins (`https://console.example.com`, exact) whose browser scripts may call the API: they
   * get CORS headers and their preflights are answered; state-changing requests from any other
   * foreign origin are refused. Default none.
   */
  readonly corsOrigins?: readonly string[];
  readonly store: EventStore;
  /** Change notices go here after each committed write. */
  readonly bus: Bus;
  readonly limits?: Partial<ApiLimits>;
}

/** The API: one function from request to response. It never rejects. */
export interface Api {
  handle(request: ApiRequest): Promise<ApiResponse>;
}
