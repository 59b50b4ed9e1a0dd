// Test support for the real ZooKeeper suites: a loopback TCP proxy that can make a session go
// silent — the server then expires it by itself, exactly as it would a paused or partitioned
// holder — or cut its connection, with or without losing the reply to a request; and housekeeping
// (reading nodes, removing a run's chroot tree). The proxy sits between the lock clients and the
// server; it learns each connection's session id from the server's connect response, so a test
// names the session to silence by `LockSession.id`.
import { createRequire } from 'node:module';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { ServiceAddress } from './real-services.ts';

/** One client connection relayed to the server. */
interface Relay {
  readonly client: Socket;
  readonly upstream: Socket;
  /** The session id as 16 hex digits, once the server's connect response has passed. */
  sessionHex: string | null;
  /** Server bytes seen before the connect response was complete. */
  head: Buffer;
  silenced: boolean;
  /** Set by {@link SilencingProxy.loseNextReply}: what to do with the next client packet. */
  onNextRequest: (() => void) | null;
  /** Server-to-client bytes are dropped (the reply to the cut request must never arrive). */
  deaf: boolean;
  /** Resolves when the server closes its end (for a silenced session: it expired it). */
  readonly upstreamClosed: Promise<void>;
}

/** How long a request whose reply is lost has to take effect before its connection is cut, in ms. */
const REPLY_LOSS_CUT_MS = 200;

/** Bytes of a ZooKeeper ConnectResponse up to the end of its session id (after the length prefix). */
const CONNECT_RESPONSE_ID_END = 4 + 4 + 4 + 8;

/** A relay between ZooKeeper clients and one server that can silence a session's connection. */
export class SilencingProxy {
  private readonly relays = new Set<Relay>();

  private constructor(
    private readonly server: Server,
    /** The loopback port clients connect to. */
    readonly port: number,
    private readonly target: ServiceAddress,
  ) {
    server.on('connection', (client) => this.relay(client));
  }

  /** Starts a proxy on an ephemeral loopback port in front of `target`. */
  static start(target: ServiceAddress): Promise<SilencingProxy> {
    return new Promise((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        if (address === null || typeof address === 'string') {
          reject(new Error('proxy has no TCP address'));
          return;
        }
        resolve(new SilencingProxy(server, address.port, target));
      });
    });
  }

  /** `host:port` for clients. */
  get connectString(): string {
    return `127.0.0.1:${this.port}`;
  }

  /**
   * Stops relaying the connection of session `sessionId` (`0x` + 16 hex digits) in both
   * directions, as a partition would, and resolves once the server has expired the session (it
   * closes the connection when it does). Then drops the client's end, so the client reconnects and
   * learns of the expiry. Rejects if the server has not expired it within `waitMsMax`.
   */
  async silence(sessionId: string, waitMsMax: number): Promise<void> {
    const relay = this.relayOf(sessionId);
    relay.silenced = true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`ZooKeeper did not expire ${sessionId} within ${waitMsMax} ms`)),
        waitMsMax,
      );
    });
    try {
      await Promise.race([relay.upstreamClosed, timedOut]);
    } finally {
      clearTimeout(timer);
    }
    relay.client.destroy();
  }

  /**
   * Cuts the connection of session `sessionId` at once, as a network blip would; the client
   * reconnects (through the proxy) and resumes the session if the server still has it.
   */
  drop(sessionId: string): void {
    const relay = this.relayOf(sessionId);
    relay.upstream.destroy();
    relay.client.destroy();
  }

  /**
   * Lets the next request of session `sessionId` reach the server, drops the server's reply, then
   * cuts the connection: the client sees a lost connection and cannot know whether the request took
   * effect (it did). The session survives; the client reconnects to it.
   */
  loseNextReply(sessionId: string): void {
    const relay = this.relayOf(sessionId);
    relay.onNextRequest = () => {
      relay.deaf = true;
      // Time for the server to carry the request out before the connection goes.
      setTimeout(() => {
        relay.upstream.destroy();
        relay.client.destroy();
      }, REPLY_LOSS_CUT_MS);
    };
  }

  /** Closes every relayed connection and stops listening. */
  async close(): Promise<void> {
    for (const relay of this.relays) {
      relay.client.destroy();
      relay.upstream.destroy();
    }
    this.relays.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** The open, relayed connection of session `sessionId` (`0x` + 16 hex digits). */
  private relayOf(sessionId: string): Relay {
    const hex = sessionId.replace(/^0x/, '');
    const relay = [...this.relays].find((r) => r.sessionHex === hex && !r.silenced && !r.deaf);
    if (relay === undefined) throw new Error(`no open connection of session ${sessionId}`);
    return relay;
  }

  private relay(client: Socket): void {
    const upstream = connect({ host: this.target.host, port: this.target.port });
    const relay: Relay = {
      client,
      upstream,
      sessionHex: null,
      head: Buffer.alloc(0),
      silenced: false,
      onNextRequest: null,
      deaf: false,
      upstreamClosed: new Promise((resolve) => upstream.once('close', () => resolve())),
    };
    this.relays.add(relay);
    client.on('data', (data: Buffer) => {
      if (!relay.silenced) upstream.write(data);
      const hook = relay.onNextRequest;
      relay.onNextRequest = null;
      hook?.();
    });
    upstream.on('data', (data: Buffer) => {
      if (relay.sessionHex === null) {
        relay.head = Buffer.concat([relay.head, data]);
        if (relay.head.length >= CONNECT_RESPONSE_ID_END) {
          relay.sessionHex = relay.head.subarray(12, CONNECT_RESPONSE_ID_END).toString('hex');
        }
      }
      if (!relay.silenced && !relay.deaf) client.write(data);
    });
    const end = (): void => {
      this.relays.delete(relay);
      client.destroy();
      upstream.destroy();
    };
    // A silenced relay keeps the client's end open until `silence` drops it.
    upstream.on('close', () => {
      if (!relay.silenced) end();
    });
    client.on('close', end);
    client.on('error', end);
    upstream.on('error', () => upstream.destroy());
  }
}

/** The slice of node-zookeeper-client used for housekeeping. */
interface ZkAdminClient {
  connect(): void;
  close(): void;
  once(event: 'connected', listener: () => void): unknown;
  remove(path: string, version: number, callback: (error: Error | null) => void): void;
  exists(path: string, callback: (error: Error | null, stat: NodeStat | null) => void): void;
  getChildren(path: string, callback: (error: Error | null, children: string[]) => void): void;
  mkdirp(path: string, callback: (error: Error | null) => void): void;
}

/** The fields of a node's stat the suites read (64-bit values as 8-byte big-endian buffers). */
export interface NodeStat {
  readonly czxid: Buffer;
  readonly ephemeralOwner: Buffer;
}

interface ZkAdminModule {
  createClient(connectString: string, options: { sessionTimeout: number }): ZkAdminClient;
}

/** Deadline of one housekeeping step, in ms. */
const ADMIN_TIMEOUT_MS = 10_000;

/** Runs `use` with a client connected straight to `target` (no chroot, no proxy), then closes it. */
export async function withAdminClient<T>(
  target: ServiceAddress,
  use: (client: ZkAdminClient) => Promise<T>,
): Promise<T> {
  const zk = createRequire(import.meta.url)('node-zookeeper-client') as ZkAdminModule;
  const client = zk.createClient(`${target.host}:${target.port}`, { sessionTimeout: 10_000 });
  try {
    await withDeadline(
      'connect',
      new Promise<void>((resolve) => {
        client.once('connected', resolve);
        client.connect();
      }),
    );
    return await use(client);
  } finally {
    client.close();
  }
}

/**
 * Deletes `path` and everything below it, depth first; a missing path is fine. (The library's own
 * `removeRecursive` lists only the first level and then fails with NOT_EMPTY.)
 */
export async function removeTree(client: ZkAdminClient, path: string): Promise<void> {
  let children: string[];
  try {
    children = await nodeChildren(client, path);
  } catch (error) {
    if (zkCode(error) === ZK_NO_NODE) return;
    throw error;
  }
  for (const child of children) await removeTree(client, `${path}/${child}`);
  await withDeadline(
    `delete ${path}`,
    new Promise<void>((resolve, reject) => {
      client.remove(path, -1, (error) => {
        if (error === null || zkCode(error) === ZK_NO_NODE) resolve();
        else reject(error);
      });
    }),
  );
}

/** Creates `path` and every missing node above it (persistent, empty). */
export function createPath(client: ZkAdminClient, path: string): Promise<void> {
  return withDeadline(
    `mkdirp ${path}`,
    new Promise<void>((resolve, reject) => {
      client.mkdirp(path, (error) => (error === null ? resolve() : reject(error)));
    }),
  );
}

/** ZooKeeper's NO_NODE error code. */
const ZK_NO_NODE = -101;

function zkCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** The stat of `path`, or null when it does not exist. */
export function nodeStat(client: ZkAdminClient, path: string): Promise<NodeStat | null> {
  return withDeadline(
    `exists ${path}`,
    new Promise<NodeStat | null>((resolve, reject) => {
      client.exists(path, (error, stat) => {
        if (error === null) resolve(stat);
        else reject(error);
      });
    }),
  );
}

/** Whether `path` exists. */
export async function nodeExists(client: ZkAdminClient, path: string): Promise<boolean> {
  return (await nodeStat(client, path)) !== null;
}

/** The names of the children of `path`. */
export function nodeChildren(client: ZkAdminClient, path: string): Promise<string[]> {
  return withDeadline(
    `getChildren ${path}`,
    new Promise<string[]>((resolve, reject) => {
      client.getChildren(path, (error, children) => {
        if (error === null) resolve(children);
        else reject(error);
      });
    }),
  );
}

function withDeadline<T>(what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`zookeeper ${what}: no answer within ${ADMIN_TIMEOUT_MS} ms`)),
      ADMIN_TIMEOUT_MS,
    );
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
