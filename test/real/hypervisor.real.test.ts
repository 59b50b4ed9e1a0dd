// Goal: the libvirt adapter keeps the Hypervisor contract on a real libvirtd with QEMU/KVM, and
// what only a real host has — disk images, the name prefix, libvirt's own refusals — works as
// documented. Method: the contract suite (test/contract/hypervisor.contract.ts) runs on
// `qemu:///system` through an adapter whose domain prefix is unique to this run
// (`cbtest-<random>-c-`), with a 512 MiB memory capacity so the admission tests start small domains;
// further tests attach real 16 MiB raw images from a temporary directory. Every domain named
// `cbtest-<random>-…` is destroyed and undefined afterwards, whatever happened. Without libvirt the
// suite is a named skip, or a failure when CI=true (CI must run it: scripts/infra/libvirt.sh).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createLibvirtHypervisor } from '../../src/adapters/libvirt-hypervisor.ts';
import { HypervisorError, type Hypervisor } from '../../src/ports/hypervisor.ts';
import { hypervisorContract } from '../contract/hypervisor.contract.ts';

const URI = 'qemu:///system';
/** Everything this run creates starts with this. */
const RUN = `cbtest-${randomBytes(4).toString('hex')}-`;
const OPERATION_TIMEOUT_MS = 60_000;
const MiB = 1024 * 1024;

function virsh(...args: string[]): string {
  return execFileSync('virsh', ['-c', URI, ...args], {
    encoding: 'utf8',
    timeout: OPERATION_TIMEOUT_MS,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Why libvirt cannot be used here, or null when it answers. */
function unavailableReason(): string | null {
  try {
    virsh('list', '--name');
    return null;
  } catch (error) {
    return `libvirt at ${URI} does not answer (run scripts/infra/libvirt.sh): ${String(error).split('\n')[0]}`;
  }
}

/** Destroys and undefines every domain of this run; returns the names still left. */
function removeRunDomains(): string[] {
  const ours = (): string[] =>
    virsh('list', '--all', '--name')
      .split('\n')
      .map((n) => n.trim())
      .filter((n) => n.startsWith(RUN));
  for (const name of ours()) {
    for (const op of ['destroy', 'undefine']) {
      try {
        virsh(op, name);
      } catch {
        // Not running, or already gone with its destroy (transient): fine.
      }
    }
  }
  return ours();
}

const missing = unavailableReason();

if (missing !== null) {
  if (process.env['CI'] === 'true') {
    describe('Hypervisor on libvirt', () => {
      it('needs libvirt in CI', () => {
        throw new Error(missing);
      });
    });
  } else {
    describe.skip(`Hypervisor on libvirt — skipped: ${missing}`, () => {
      it('needs libvirt', () => undefined);
    });
  }
} else {
  afterAll(() => {
    expect(removeRunDomains()).toEqual([]);
  });

  /** A directory of small raw images the qemu user can reach, made on first use. */
  let imageDir = '';
  const image = (file: string, sizeBytes = 16 * MiB): string => {
    if (imageDir === '') {
      imageDir = mkdtempSync(join(tmpdir(), `${RUN}disks-`));
      // qemu runs as libvirt-qemu: it must traverse the directory (libvirt chowns the file).
      chmodSync(imageDir, 0o755);
    }
    const path = join(imageDir, file);
    writeFileSync(path, '');
    truncateSync(path, sizeBytes);
    return path;
  };

  afterAll(() => {
    if (imageDir !== '') rmSync(imageDir, { recursive: true, force: true });
  });

  hypervisorContract(
    `libvirt ${URI}`,
    () => {
      const hypervisor = createLibvirtHypervisor({
        uri: URI,
        domainPrefix: `${RUN}c-`,
        operationTimeoutMs: OPERATION_TIMEOUT_MS,
        memoryCapacityMb: 512,
      });
      return Promise.resolve({
        hypervisor,
        settle: <T>(promise: Promise<T>) => promise,
        sleep: (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)),
        cleanup: () => hypervisor.close(),
        diskImages: { present: image('contract.raw'), missing: join(tmpdir(), `${RUN}none.raw`) },
      });
    },
    // The adapter's prefix already isolates the run: the suite's own names need none.
    { prefix: '' },
  );

  describe('libvirt adapter on a real host', () => {
    const prefix = `${RUN}x-`;
    let hv: Hypervisor;

    const reasonOf = async (promise: Promise<unknown>): Promise<HypervisorError> => {
      const error = await promise.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(HypervisorError);
      return error as HypervisorError;
    };

    afterEach(async () => {
      for (const d of await hv.listDomains()) {
        if (d.state === 'running' || d.state === 'paused') await hv.destroy(d.name);
        if ((await hv.getDomain(d.name)) !== null) await hv.undefine(d.name);
      }
      await hv.close();
    });

    const fresh = () => {
      hv = createLibvirtHypervisor({
        uri: URI,
        domainPrefix: prefix,
        operationTimeoutMs: OPERATION_TIMEOUT_MS,
      });
      return hv;
    };

    it('boots a domain with virtio disks on raw images and reports them', async () => {
      fresh();
      const disks = [
        { target: 'vda', source: image('root.raw') },
        { target: 'vdb', source: image('data.raw', 4 * MiB) },
      ];
      await hv.define({ name: 'disks', vcpus: 1, memoryMb: 64, disks });
      await hv.start('disks');
      expect(await hv.getDomain('disks')).toEqual({
        name: 'disks',
        vcpus: 1,
        memoryMb: 64,
        disks,
        state: 'running',
      });
      // The libvirt definition is what the XML promised: virtio file disks, no graphics.
      const xml = virsh('dumpxml', `${prefix}disks`);
      expect(xml).toContain(`<source file='${disks[0]!.source}'`);
      expect(xml).toMatch(/<target dev='vda' bus='virtio'\/>/);
      expect(xml).not.toContain('<graphics');
    });

    it('sees only domains with its prefix and names them without it', async () => {
      fresh();
      // A foreign domain: this run's, but outside the adapter's prefix.
      const foreign = `${RUN}foreign`;
      const xml = join(mkdtempSync(join(tmpdir(), 'cbtest-xml-')), 'foreign.xml');
      writeFileSync(
        xml,
        `<domain type='qemu'><name>${foreign}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>`,
      );
      virsh('define', xml);
      rmSync(dirname(xml), { recursive: true });
      await hv.define({ name: 'mine', vcpus: 1, memoryMb: 64, disks: [] });
      expect((await hv.listDomains()).map((d) => d.name)).toEqual(['mine']);
      expect(await hv.getDomain(foreign)).toBeNull();
      expect(await hv.getDomain(foreign.slice(prefix.length))).toBeNull();
      expect((await reasonOf(hv.start(foreign))).reason).toBe('no-domain');
      // libvirt knows the adapter's domain under its prefixed name.
      expect(virsh('domstate', `${prefix}mine`).trim()).toBe('shut off');
      virsh('undefine', foreign);
    });

    it('reports the host capacity from nodeinfo when no memory capacity is configured', async () => {
      fresh();
      const node = virsh('nodeinfo');
      const kib = Number(/^Memory size:\s*(\d+) KiB/m.exec(node)?.[1]);
      const cpus = Number(/^CPU\(s\):\s*(\d+)/m.exec(node)?.[1]);
      expect(await hv.capacity()).toEqual({ vcpus: cpus, memoryMb: Math.floor(kib / 1024) });
    });
  });
}
