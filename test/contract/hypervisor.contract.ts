// The Hypervisor port's contract: libvirt semantics every implementation must show — the simulated
// compute host here (test/contract/sim-hosts.test.ts) and the libvirt adapter on `qemu:///system`
// later (test/real). Method: each test gets a fresh fixture from the factory, works only on domains
// named with a unique prefix (`cbtest-<random>-`), never assumes the host is empty (it filters
// listings by prefix and computes free memory from what already runs), and removes what it made.
// Specs stay minimal (64 MiB, one vCPU, no disks) so a real implementation can fill in XML defaults
// and boot them without an OS; the disk case uses images the fixture provides, or is skipped.
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  HypervisorError,
  type DomainInfo,
  type DomainSpec,
  type HypervisorErrorCode,
  type Hypervisor,
} from '../../src/ports/hypervisor.ts';

/** What the contract needs from an implementation under test. */
export interface HypervisorFixture {
  readonly hypervisor: Hypervisor;
  /** Resolves as `promise` does; the simulator drives its world until then, real hosts just wait. */
  settle<T>(promise: Promise<T>): Promise<T>;
  /** Lets `delayMs` of the implementation's time pass (virtual in the simulator). */
  sleep(delayMs: number): Promise<void>;
  /** Releases the fixture (closes connections). Domains are removed by the suite itself. */
  cleanup(): Promise<void>;
  /**
   * Paths of a disk image that exists on the host (a small raw file) and of one that does not, for
   * the disk cases; without them those cases are skipped.
   */
  readonly diskImages?: { readonly present: string; readonly missing: string };
}

/** Options for {@link hypervisorContract}. */
export interface HypervisorContractOptions {
  /**
   * When guests honour ACPI power-off, the bound in ms within which a shut-down guest must reach
   * `shutoff`. Omit for guests without an operating system (the real suite's diskless domains),
   * which ignore the power button: then the suite only checks the request is accepted.
   */
  readonly acpiShutdownWithinMs?: number;
  /** Name prefix of everything the suite creates; default `cbtest-<8 hex>-`. */
  readonly prefix?: string;
}

/** Memory of every test domain, in MiB: small enough for any real host. */
const MEMORY_MB = 64;

/** Registers the Hypervisor contract tests under `describe(name)`. */
export function hypervisorContract(
  name: string,
  factory: () => Promise<HypervisorFixture>,
  options: HypervisorContractOptions = {},
): void {
  describe(`Hypervisor contract: ${name}`, () => {
    const prefix = options.prefix ?? `cbtest-${randomBytes(4).toString('hex')}-`;
    let fx: HypervisorFixture;
    let hv: Hypervisor;
    let serial = 0;
    /** A fresh, unique domain name. */
    const fresh = (label: string): string => `${prefix}${++serial}-${label}`;
    const spec = (name: string, overrides: Partial<DomainSpec> = {}): DomainSpec => ({
      name,
      vcpus: 1,
      memoryMb: MEMORY_MB,
      disks: [],
      ...overrides,
    });
    const ours = (domains: readonly DomainInfo[]): DomainInfo[] =>
      domains.filter((d) => d.name.startsWith(prefix));
    const expectReason = async (
      promise: Promise<unknown>,
      reason: HypervisorErrorCode,
    ): Promise<void> => {
      const error = await fx.settle(promise).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, `expected ${reason}`).toBeInstanceOf(HypervisorError);
      expect(error).toMatchObject({ reason, code: `hypervisor.${reason}` });
    };
    const state = async (name: string): Promise<string | undefined> =>
      (await fx.settle(hv.getDomain(name)))?.state;
    const defined = async (name: string, overrides: Partial<DomainSpec> = {}): Promise<string> => {
      await fx.settle(hv.define(spec(name, overrides)));
      return name;
    };
    const running = async (name: string, overrides: Partial<DomainSpec> = {}): Promise<string> => {
      await defined(name, overrides);
      await fx.settle(hv.start(name));
      return name;
    };

    beforeEach(async () => {
      fx = await factory();
      hv = fx.hypervisor;
    });

    afterEach(async () => {
      // Remove our domains whatever state a test left them in; a failure here fails the test.
      for (const d of ours(await fx.settle(hv.listDomains()))) {
        if (d.state === 'running' || d.state === 'paused') await fx.settle(hv.destroy(d.name));
        // A transient domain vanished with the destroy.
        if ((await fx.settle(hv.getDomain(d.name))) !== null) {
          await fx.settle(hv.undefine(d.name));
        }
      }
      expect(ours(await fx.settle(hv.listDomains()))).toEqual([]);
      await fx.cleanup();
    });

    it('reports a positive capacity', async () => {
      const capacity = await fx.settle(hv.capacity());
      expect(capacity.vcpus).toBeGreaterThan(0);
      expect(capacity.memoryMb).toBeGreaterThan(0);
      expect(Number.isInteger(capacity.memoryMb)).toBe(true);
    });

    it('defines a shut-off domain that get and list report with its spec', async () => {
      const name = fresh('a');
      await fx.settle(hv.define(spec(name, { vcpus: 2 })));
      expect(await fx.settle(hv.getDomain(name))).toEqual({
        name,
        vcpus: 2,
        memoryMb: MEMORY_MB,
        disks: [],
        state: 'shutoff',
      });
      expect(ours(await fx.settle(hv.listDomains()))).toEqual([
        { name, vcpus: 2, memoryMb: MEMORY_MB, disks: [], state: 'shutoff' },
      ]);
    });

    it('lists every domain sorted by name', async () => {
      // Defined out of order; foreign domains on the host must be sorted in too.
      const names = [fresh('c'), fresh('a'), fresh('b')];
      for (const n of [names[2]!, names[0]!, names[1]!]) await defined(n);
      const all = (await fx.settle(hv.listDomains())).map((d) => d.name);
      expect(all).toEqual([...all].sort());
      expect(all.filter((n) => n.startsWith(prefix))).toEqual([...names].sort());
    });

    it('returns null for an unknown domain', async () => {
      expect(await fx.settle(hv.getDomain(fresh('missing')))).toBeNull();
    });

    it('redefining a shut-off domain replaces its definition', async () => {
      const name = await defined(fresh('a'));
      await fx.settle(hv.define(spec(name, { vcpus: 2, memoryMb: 2 * MEMORY_MB })));
      expect(await fx.settle(hv.getDomain(name))).toMatchObject({
        vcpus: 2,
        memoryMb: 2 * MEMORY_MB,
        state: 'shutoff',
      });
      // Defining the same spec again is harmless: retries are idempotent.
      await fx.settle(hv.define(spec(name, { vcpus: 2, memoryMb: 2 * MEMORY_MB })));
      expect(ours(await fx.settle(hv.listDomains()))).toHaveLength(1);
    });

    it('redefining a running domain keeps it running on its live definition until restarted', async () => {
      const name = await running(fresh('a'));
      await fx.settle(hv.define(spec(name, { vcpus: 2 })));
      expect(await fx.settle(hv.getDomain(name))).toMatchObject({ vcpus: 1, state: 'running' });
      await fx.settle(hv.destroy(name));
      expect(await fx.settle(hv.getDomain(name))).toMatchObject({ vcpus: 2, state: 'shutoff' });
      await fx.settle(hv.start(name));
      expect(await fx.settle(hv.getDomain(name))).toMatchObject({ vcpus: 2, state: 'running' });
    });

    it('starts a shut-off domain; starting an active one is already-running', async () => {
      const name = await defined(fresh('a'));
      await fx.settle(hv.start(name));
      expect(await state(name)).toBe('running');
      await expectReason(hv.start(name), 'already-running');
      expect(await state(name)).toBe('running');
    });

    it('destroys a running domain at once; destroying an inactive one is not-running', async () => {
      const name = await running(fresh('a'));
      await fx.settle(hv.destroy(name));
      expect(await state(name)).toBe('shutoff');
      await expectReason(hv.destroy(name), 'not-running');
      // Destroy keeps the definition.
      await fx.settle(hv.start(name));
      expect(await state(name)).toBe('running');
    });

    it('shutdown of an inactive domain is not-running', async () => {
      const name = await defined(fresh('a'));
      await expectReason(hv.shutdown(name), 'not-running');
      expect(await state(name)).toBe('shutoff');
    });

    it('shutdown asks the guest to power off', async () => {
      const name = await running(fresh('a'));
      await fx.settle(hv.shutdown(name));
      const within = options.acpiShutdownWithinMs;
      if (within === undefined) {
        // A guest without an OS ignores the power button; the request itself must succeed.
        expect(['running', 'shutoff']).toContain(await state(name));
        return;
      }
      const stepMs = Math.max(1, Math.ceil(within / 200));
      let waited = 0;
      while ((await state(name)) !== 'shutoff' && waited <= within) {
        await fx.sleep(stepMs);
        waited += stepMs;
      }
      expect(await state(name)).toBe('shutoff');
      // The definition stays.
      await fx.settle(hv.start(name));
      expect(await state(name)).toBe('running');
    });

    it('undefines a shut-off domain; a second undefine is no-domain', async () => {
      const name = await defined(fresh('a'));
      await fx.settle(hv.undefine(name));
      expect(await fx.settle(hv.getDomain(name))).toBeNull();
      expect(ours(await fx.settle(hv.listDomains()))).toEqual([]);
      await expectReason(hv.undefine(name), 'no-domain');
    });

    it('undefining a running domain makes it transient: it runs on and vanishes when stopped', async () => {
      // Real libvirt allows this (virDomainUndefine on an active persistent domain).
      const name = await running(fresh('a'));
      await fx.settle(hv.undefine(name));
      expect(await fx.settle(hv.getDomain(name))).toMatchObject({ state: 'running' });
      expect(ours(await fx.settle(hv.listDomains())).map((d) => d.name)).toEqual([name]);
      // A transient domain has no definition left to remove.
      await expectReason(hv.undefine(name), 'domain-active');
      await fx.settle(hv.destroy(name));
      expect(await fx.settle(hv.getDomain(name))).toBeNull();
      await expectReason(hv.start(name), 'no-domain');
    });

    it('redefining a transient domain makes it persistent again', async () => {
      const name = await running(fresh('a'));
      await fx.settle(hv.undefine(name));
      await fx.settle(hv.define(spec(name)));
      await fx.settle(hv.destroy(name));
      expect(await state(name)).toBe('shutoff');
    });

    it('operations on an unknown domain are no-domain', async () => {
      const name = fresh('missing');
      await expectReason(hv.start(name), 'no-domain');
      await expectReason(hv.shutdown(name), 'no-domain');
      await expectReason(hv.destroy(name), 'no-domain');
      await expectReason(hv.undefine(name), 'no-domain');
    });

    it('refuses to start a domain larger than the host: out-of-memory', async () => {
      const capacity = await fx.settle(hv.capacity());
      const name = await defined(fresh('huge'), { memoryMb: capacity.memoryMb + MEMORY_MB });
      await expectReason(hv.start(name), 'out-of-memory');
      expect(await state(name)).toBe('shutoff');
    });

    it('refuses a start whose memory does not fit beside the active domains', async () => {
      const capacity = await fx.settle(hv.capacity());
      const active = (await fx.settle(hv.listDomains())).filter(
        (d) => d.state === 'running' || d.state === 'paused',
      );
      const freeMb = capacity.memoryMb - active.reduce((sum, d) => sum + d.memoryMb, 0);
      expect(freeMb, 'this test needs 64 MiB of free host memory').toBeGreaterThanOrEqual(
        MEMORY_MB,
      );
      // `big` fits alone and leaves less than `small` needs.
      const big = await running(fresh('big'), { memoryMb: freeMb - MEMORY_MB / 2 });
      const small = await defined(fresh('small'));
      await expectReason(hv.start(small), 'out-of-memory');
      expect(await state(small)).toBe('shutoff');
      // Memory is released when a domain stops.
      await fx.settle(hv.destroy(big));
      await fx.settle(hv.start(small));
      expect(await state(small)).toBe('running');
    });

    it('rejects invalid definitions without defining anything', async () => {
      const bad: DomainSpec[] = [
        spec(''),
        spec(`${prefix}with/slash`),
        spec(fresh('novcpu'), { vcpus: 0 }),
        spec(fresh('nomem'), { memoryMb: 0 }),
        spec(fresh('fractional'), { memoryMb: 64.5 }),
        // Targets libvirt cannot name ("Unknown disk name", "partitions can't appear").
        spec(fresh('badtarget'), { disks: [{ target: 'foo', source: '/nonexistent/disk.raw' }] }),
        spec(fresh('partition'), { disks: [{ target: 'vda1', source: '/nonexistent/disk.raw' }] }),
      ];
      for (const s of bad) await expectReason(hv.define(s), 'invalid-definition');
      expect(ours(await fx.settle(hv.listDomains()))).toEqual([]);
    });

    it('starts with its disk images; a start whose image is missing is invalid-definition', async (ctx) => {
      const images = fx.diskImages;
      if (images === undefined) return ctx.skip('the fixture has no disk images');
      const disks = [{ target: 'vda', source: images.present }];
      const name = await defined(fresh('disk'), { disks });
      expect(await fx.settle(hv.getDomain(name))).toMatchObject({ disks, state: 'shutoff' });
      await fx.settle(hv.start(name));
      expect(await fx.settle(hv.getDomain(name))).toMatchObject({ disks, state: 'running' });
      // libvirt checks disk sources when qemu starts, not at define.
      const broken = await defined(fresh('nodisk'), {
        disks: [{ target: 'vda', source: images.missing }],
      });
      await expectReason(hv.start(broken), 'invalid-definition');
      expect(await state(broken)).toBe('shutoff');
    });

    it('domain errors are not retryable', async () => {
      const name = await running(fresh('a'));
      const error = await fx.settle(hv.start(name)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(HypervisorError);
      expect((error as HypervisorError).retryable).toBe(false);
    });
  });
}
