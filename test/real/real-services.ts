// Shared by the real-infrastructure suites: where the services are (loopback only), names unique to
// this test run, and the gate that turns a missing service into a clear failure in CI (`CI=true`)
// and a clear, named skip on a developer's machine. `scripts/setup-infra.sh` installs and starts
// everything these suites need.
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';

/** A service the real suites use, on loopback. */
export interface ServiceAddress {
  /** Human name, used in skip and failure messages. */
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

export const POSTGRES: ServiceAddress = { name: 'PostgreSQL', host: '127.0.0.1', port: 5432 };
export const REDIS: ServiceAddress = { name: 'Redis', host: '127.0.0.1', port: 6379 };
export const ZOOKEEPER: ServiceAddress = { name: 'ZooKeeper', host: '127.0.0.1', port: 2181 };

/** The database the suites create their schemas in (trust auth on the machine's PostgreSQL). */
export const POSTGRES_URL = `postgres://postgres@${POSTGRES.host}:${POSTGRES.port}/test`;

/**
 * A token unique to this test run (process and random bits), lowercase letters and digits: safe
 * in a schema name, a key prefix or a ZooKeeper path. Every name a run creates starts with
 * `cloudbed_test_<RUN_ID>` (or a spelling of it) so a crashed run can be cleaned up by prefix.
 */
export const RUN_ID = `${process.pid.toString(36)}${randomBytes(4).toString('hex')}`;

/** How long a probe waits for a TCP connection, in ms. */
const PROBE_TIMEOUT_MS = 2_000;

/** Whether something accepts TCP connections at `address` within the probe timeout. */
export function answers(address: ServiceAddress): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: address.host, port: address.port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** The outcome of {@link requireService}. */
export interface ServiceGate {
  readonly available: boolean;
  /** Why the suite is skipped (empty when available); put it in the describe title. */
  readonly skipReason: string;
}

/**
 * Probes `address` once, before the suite registers its tests. Missing in CI (`CI=true`): throws,
 * so the file fails to load with the reason. Missing locally: returns a gate whose `skipReason`
 * names the service and the fix, for `describe.skipIf(!gate.available)`.
 */
export async function requireService(address: ServiceAddress): Promise<ServiceGate> {
  if (await answers(address)) return { available: true, skipReason: '' };
  const reason =
    `${address.name} does not answer on ${address.host}:${address.port}; ` +
    'run `sudo scripts/setup-infra.sh` to install and start it';
  if (process.env['CI'] === 'true') {
    throw new Error(`real-infrastructure suite cannot run in CI: ${reason}`);
  }
  console.warn(`SKIPPED: ${reason}`);
  return { available: false, skipReason: ` (SKIPPED: ${reason})` };
}

/** Resolves after `ms` of real time. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
