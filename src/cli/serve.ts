/**
 * `cloudbed serve`: the playground. Runs the same router as a real HTTP server on 127.0.0.1, with
 * every other component embedded — the event store (memory or SQL on pg-mem), the Redis bus on
 * an in-memory Redis pub/sub server, the lock service, simulated compute hosts and a storage node — paced to the system
 * clock, so a newcomer can curl a working cloud with zero infrastructure.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { startHttpServer } from '../adapters/http-server.ts';
import { cryptoRandom } from '../adapters/system-runtime.ts';
import { isOrigin } from '../control/api/browser.ts';
import { credentialsExport, CURL_HINT } from '../control/api/html.ts';
import { PERSON_SECRET_KDF } from '../model/resources.ts';
import { createCloud } from '../sim/cloud.ts';
import { STORES, type StoreKind } from '../sim/scenario.ts';
import { Simulation } from '../sim/simulation.ts';
import { intOption, parse, UsageError } from './args.ts';
import { startRealtime } from './realtime.ts';

export const SERVE_HELP = `Usage: cloudbed serve [--port N] [--hosts N] [--store memory|pgmem]
                      [--cors-origin ORIGIN]...

Serves the cloudbed API on http://127.0.0.1:<port>/v1 with every component embedded and
simulated compute hosts running on the system clock. Stop it with Ctrl-C.

Options:
  --port N        TCP port on 127.0.0.1 (default 8080; 0 picks a free one)
  --hosts N       number of compute hosts (default 3); one storage node is always added
  --store KIND    memory (default) or pgmem (the SQL event store on pg-mem)
  --cors-origin ORIGIN
                  let browser scripts on ORIGIN (http(s)://host[:port]) call the API, with
                  credentials; repeatable. Writes from any other site's pages are refused.
  -h, --help      show this help

Environment:
  CLOUDBED_ADMIN_ACCESS_KEY, CLOUDBED_ADMIN_SECRET_KEY
                  the admin account's key pair; when unset, keys are generated and printed

Try:
  curl -u ACCESS:SECRET http://127.0.0.1:8080/v1
  curl -u ACCESS:SECRET -X POST http://127.0.0.1:8080/v1/virtualmachines \\
       -H 'content-type: application/json' -d '{"name":"web-1","imageId":"img-00000001"}'
`;

/** Compute host size of the playground: room for a few dozen small VMs per host. */
const HOST_VCPUS = 32;
const HOST_MEMORY_MB = 131_072;
const STORAGE_POOL_GB = 16_384;

export async function serveCommand(argv: readonly string[]): Promise<number | undefined> {
  const { values, positionals } = parse('serve', argv, {
    port: { type: 'string' },
    hosts: { type: 'string' },
    store: { type: 'string' },
    'cors-origin': { type: 'string', multiple: true },
  });
  if (positionals.length > 0)
    throw new UsageError(`cloudbed serve: unexpected argument '${positionals[0]}'`);
  const port = intOption('serve', 'port', values.port, { min: 0, max: 65_535 }) ?? 8080;
  const hosts = intOption('serve', 'hosts', values.hosts, { min: 1, max: 1000 }) ?? 3;
  const store = (values.store ?? 'memory') as StoreKind;
  const corsOrigins = (values['cors-origin'] ?? []).map((origin) => {
    if (!isOrigin(origin))
      throw new UsageError(
        `cloudbed serve: --cors-origin must be an origin such as https://console.example.com (scheme, host, optional port; no path), got '${origin.slice(0, 100)}'`,
      );
    return origin;
  });
  if (!(STORES as readonly string[]).includes(store)) {
    throw new UsageError(
      `cloudbed serve: --store must be one of ${STORES.join(', ')}, got '${store}'`,
    );
  }
  const admin = adminKeys();

  const sim = new Simulation({ seed: randomInt(2 ** 31), epochMs: Date.now(), traceEvents: false });
  const cloud = await createCloud(sim, {
    topology: {
      compute: { count: hosts, vcpus: HOST_VCPUS, memoryMb: HOST_MEMORY_MB },
      storage: { count: 1, poolSizeGb: STORAGE_POOL_GB },
      mainLoops: 1,
      accounts: [],
    },
    store,
    admin: {
      accessKey: admin.accessKey,
      secretKey: admin.secretKey,
      ...(admin.generated ? {} : { secretKdf: PERSON_SECRET_KDF }),
    },
    // Keys and secrets from the system's CSPRNG: the seed above is drawn from 2^31 values and
    // shared by everything else in the run, so anything drawn from it can be recomputed.
    secrets: cryptoRandom(),
    corsOrigins,
  });
  cloud.start();
  let failure: string | undefined;
  const driver = startRealtime(sim, (reason) => {
    failure = reason;
  });
  let server: Awaited<ReturnType<typeof startHttpServer>>;
  try {
    server = await startHttpServer({
      port,
      // One line per request on stderr, so stdout keeps the banner alone.
      accessLog: (line) => void process.stderr.write(`${line}\n`),
      handle: async (request) => {
        driver.sync();
        const response = await cloud.request(request);
        return (
          response ?? {
            status: 503,
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({
              type: 'error',
              status: 503,
              code: 'ServiceUnavailable',
              message: 'the API did not answer in time',
            }),
          }
        );
      },
    });
  } catch (error) {
    driver.stop();
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE')
      throw new UsageError(
        `cloudbed serve: port ${port} on 127.0.0.1 is in use by another process; choose another with --port N (--port 0 picks a free one)`,
      );
    throw error;
  }

  process.stdout.write(
    `cloudbed serve: ${server.url}/v1 (${hosts} compute hosts, 1 storage node, ${store} store)\n`,
  );
  // The curl hints (here and on the HTML pages) read the keys from these two variables.
  if (admin.generated) {
    process.stdout.write(
      `admin access key: ${admin.accessKey}\nadmin secret key: ${admin.secretKey}\n` +
        `${credentialsExport(admin.accessKey, admin.secretKey)}\n`,
    );
  } else {
    process.stdout.write(
      'admin keys: from CLOUDBED_ADMIN_ACCESS_KEY / CLOUDBED_ADMIN_SECRET_KEY\n' +
        `${credentialsExport('"$CLOUDBED_ADMIN_ACCESS_KEY"', '"$CLOUDBED_ADMIN_SECRET_KEY"')}\n`,
    );
  }
  process.stdout.write(`try: ${CURL_HINT} ${server.url}/v1\n`);

  const stop = (): void => driver.stop();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await driver.done;
  await server.close();
  await cloud.close();
  if (failure !== undefined) {
    process.stderr.write(`cloudbed serve: the simulated cloud failed: ${failure}\n`);
    return 1;
  }
  return 0;
}

function adminKeys(): { accessKey: string; secretKey: string; generated: boolean } {
  const accessKey = process.env['CLOUDBED_ADMIN_ACCESS_KEY'];
  const secretKey = process.env['CLOUDBED_ADMIN_SECRET_KEY'];
  if ((accessKey === undefined) !== (secretKey === undefined)) {
    throw new UsageError(
      'cloudbed serve: set both CLOUDBED_ADMIN_ACCESS_KEY and CLOUDBED_ADMIN_SECRET_KEY, or neither',
    );
  }
  if (accessKey !== undefined && secretKey !== undefined) {
    if (accessKey === '' || accessKey.includes(':') || secretKey === '') {
      throw new UsageError(
        'cloudbed serve: CLOUDBED_ADMIN_ACCESS_KEY must be non-empty without ":", and the secret non-empty',
      );
    }
    return { accessKey, secretKey, generated: false };
  }
  return {
    accessKey: `admin-${randomBytes(6).toString('hex')}`,
    secretKey: randomBytes(24).toString('base64url'),
    generated: true,
  };
}
