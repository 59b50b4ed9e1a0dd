/**
 * Benchmark of the API over HTTP: the list page of 100 VMs (`GET /v1/virtualmachines`, one page
 * of the default size) as a client sees it from `cloudbed serve`, on the memory store and on
 * pg-mem. The server runs in a child process of its own (one core), the load generator
 * (autocannon) here: first as fast as it answers (requests per second), then at an offered load
 * of 100 requests per second (latency p99). Not part of `npm test`; no test asserts on time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

const root = fileURLToPath(new URL('..', import.meta.url));
const ACCESS = 'bench-admin';
const SECRET = 'bench-admin-secret-0123456789';
const AUTH = `Basic ${Buffer.from(`${ACCESS}:${SECRET}`).toString('base64')}`;
const VMS = 100;

/** What one store's run measured. */
export interface ApiFigures {
  readonly store: string;
  /** Requests per second answered when offered as many as it takes (8 connections). */
  readonly maxRequestsPerSecond: number;
  readonly maxP99Ms: number;
  /** Latency p99 at an offered 100 requests per second. */
  readonly p99MsAt100: number;
  /** Answers other than 200 over both runs (must be 0). */
  readonly non200: number;
}

/** Starts `cloudbed serve` on a free port; resolves with its base URL and the process. */
async function serve(store: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    ['bin/cloudbed.js', 'serve', '--port', '0', '--hosts', '10', '--store', store],
    {
      cwd: root,
      env: {
        ...process.env,
        CLOUDBED_ADMIN_ACCESS_KEY: ACCESS,
        CLOUDBED_ADMIN_SECRET_KEY: SECRET,
      },
      // The access log goes to stderr: one line per request, not wanted here.
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  const lines = createInterface({ input: child.stdout });
  for await (const line of lines) {
    const match = /^cloudbed serve: (http:\/\/[^ ]+)\/v1 /.exec(line);
    if (match !== null) return { url: match[1]!, child };
  }
  throw new Error(`cloudbed serve --store ${store} ended before it listened`);
}

async function load(
  url: string,
  options: { readonly duration: number; readonly overallRate?: number },
): Promise<autocannon.Result> {
  return autocannon({
    url: `${url}/v1/virtualmachines`,
    connections: 8,
    duration: options.duration,
    headers: { authorization: AUTH, accept: 'application/json' },
    ...(options.overallRate === undefined ? {} : { overallRate: options.overallRate }),
  });
}

/** Measures the list page on `store`. */
export async function apiBench(store: string, seconds = 5): Promise<ApiFigures> {
  const { url, child } = await serve(store);
  try {
    for (let i = 0; i < VMS; i++) {
      const response = await fetch(`${url}/v1/virtualmachines`, {
        method: 'POST',
        headers: { authorization: AUTH, 'content-type': 'application/json' },
        body: JSON.stringify({ name: `vm-${i}`, imageId: 'img-00000001', vcpus: 1, memoryMb: 512 }),
      });
      if (response.status !== 202) throw new Error(`creating a VM answered ${response.status}`);
      await response.arrayBuffer();
    }
    await load(url, { duration: 1 }); // warm-up
    const max = await load(url, { duration: seconds });
    const paced = await load(url, { duration: seconds, overallRate: 100 });
    return {
      store,
      maxRequestsPerSecond: max.requests.average,
      maxP99Ms: max.latency.p99,
      p99MsAt100: paced.latency.p99,
      non200: max.non2xx + paced.non2xx + max.errors + paced.errors,
    };
  } finally {
    child.kill('SIGINT');
  }
}
