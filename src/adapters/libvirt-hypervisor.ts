/**
 * The Hypervisor port over libvirt, driven through `virsh` (one short-lived `virsh -c <uri>` per
 * call, run with execFile and a timeout — no shell, no native binding, nothing to keep connected).
 * It runs the control plane's compute agent against `qemu:///system` in staging, and the Hypervisor
 * contract suite in test/real. The semantics the port and the simulated host promise are libvirt's
 * own; where libvirt differs from the port, this adapter closes the gap:
 *
 * - **Prefix.** Only domains whose libvirt name starts with `domainPrefix` are visible, and the
 *   port's names are the part after it (`define({name: 'vm-1'})` defines `<prefix>vm-1`), so a test
 *   run or a staging control plane never sees nor touches anyone else's domains.
 * - **Memory admission.** libvirt starts a domain whatever memory the others use (QEMU allocates
 *   lazily; only an allocation the kernel refuses outright fails). The port says a start that does
 *   not fit is `out-of-memory`, so `start` first sums the memory of the visible active domains and
 *   refuses when the domain would exceed the capacity (`memoryCapacityMb`, default the host's memory
 *   from `virsh nodeinfo`). Starts through one adapter are serialised so the check is exact for it;
 *   between processes it is advisory (the control plane drives each host through one agent).
 *   libvirt's own "Cannot allocate memory" also maps to `out-of-memory`.
 * - **Redefinition.** libvirt refuses a definition whose name exists under another UUID, and a
 *   generated definition has none: `define` looks the UUID up and keeps it.
 * - **Error codes.** libvirt reports most refusals as one "Requested operation is not valid"; the
 *   code is chosen per operation (start: `already-running`; shutdown, destroy: `not-running`;
 *   undefine: `domain-active`). Unknown names: `no-domain`. A definition libvirt's parser refuses:
 *   `invalid-definition`; so is a start whose disk image does not exist (libvirt checks sources at
 *   start, not at define). A virsh that cannot reach libvirtd: retryable `unavailable`; a command
 *   that outlives `operationTimeoutMs`: the port layer's retryable `TimeoutError`. Every error keeps
 *   the {@link CommandError} (stderr, exit code) as `cause`.
 * - **States.** `virsh domstate --reason`: running, blocked, idle and "in shutdown" are `running`;
 *   paused and pmsuspended `paused`; "shut off (crashed)" and libvirt's crashed state are `crashed`
 *   (the simulated host's meaning: inactive and startable); other shut-off reasons `shutoff`.
 *
 * Generated domains: KVM (or TCG `qemu` where /dev/kvm is missing), memory in MiB, one virtio disk
 * per port disk (`<disk type='file'>`, raw images — the ZFS adapter's `disk.raw` files), ACPI so
 * guests honour `shutdown`, a serial console on a pty, and no graphics (libvirt 9 rejects
 * `<graphics type='none'/>`; leaving graphics out is how one says none). Power-off destroys the
 * qemu process, a guest reboot restarts it, a guest crash leaves it shut off (crashed).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assert } from '../lib/assert.ts';
import { TimeoutError } from '../ports/errors.ts';
import {
  HypervisorError,
  validateDomainSpec,
  type DomainDisk,
  type DomainInfo,
  type DomainSpec,
  type DomainState,
  type HostCapacity,
  type Hypervisor,
} from '../ports/hypervisor.ts';
import { CommandError, runCommand } from './exec.ts';

/** Options for {@link createLibvirtHypervisor}. */
export interface LibvirtHypervisorOptions {
  /** libvirt connection URI. Default `qemu:///system`. */
  readonly uri?: string;
  /**
   * Prepended to every port name to form the libvirt name; only domains carrying it are visible.
   * Default `''` (every domain of the host is visible).
   */
  readonly domainPrefix?: string;
  /**
   * The `<domain type>`: `kvm` (hardware virtualisation) or `qemu` (TCG emulation). Default `kvm`
   * when /dev/kvm exists on this machine, else `qemu`. Set it for a remote URI.
   */
  readonly domainType?: 'kvm' | 'qemu';
  /** Timeout of each virsh command in ms; positive. Default 30 000. */
  readonly operationTimeoutMs?: number;
  /**
   * The memory, in MiB, that domains of this adapter may use together: a positive integer. Default:
   * the host's memory from `virsh nodeinfo`.
   */
  readonly memoryCapacityMb?: number;
  /** The virsh executable. Default `virsh` (from PATH). */
  readonly virsh?: string;
}

/** Operations of the port, for per-operation error mapping and messages. */
export type HypervisorOperation =
  'capacity' | 'list' | 'get' | 'define' | 'start' | 'shutdown' | 'destroy' | 'undefine';

/** Default timeout of one virsh command. */
export const OPERATION_TIMEOUT_MS_DEFAULT = 30_000;

/** Domains read in parallel by `listDomains`. */
const READ_CONCURRENCY = 4;

/** Creates a {@link Hypervisor} over libvirt through virsh. Does not contact libvirt yet. */
export function createLibvirtHypervisor(options: LibvirtHypervisorOptions = {}): Hypervisor {
  return new LibvirtHypervisor(options);
}

class LibvirtHypervisor implements Hypervisor {
  private readonly uri: string;
  private readonly prefix: string;
  private readonly domainType: 'kvm' | 'qemu';
  private readonly timeoutMs: number;
  private readonly memoryCapacityMb: number | undefined;
  private readonly virshPath: string;
  private closed = false;
  /** Tail of the start queue: starts run one at a time so the memory admission check is exact. */
  private starts: Promise<unknown> = Promise.resolve();

  constructor(options: LibvirtHypervisorOptions) {
    this.uri = options.uri ?? 'qemu:///system';
    this.prefix = options.domainPrefix ?? '';
    this.domainType = options.domainType ?? (existsSync('/dev/kvm') ? 'kvm' : 'qemu');
    this.timeoutMs = options.operationTimeoutMs ?? OPERATION_TIMEOUT_MS_DEFAULT;
    this.memoryCapacityMb = options.memoryCapacityMb;
    this.virshPath = options.virsh ?? 'virsh';
    assert(
      Number.isSafeInteger(this.timeoutMs) && this.timeoutMs > 0,
      `operationTimeoutMs must be a positive integer, got ${this.timeoutMs}`,
    );
    assert(
      this.memoryCapacityMb === undefined ||
        (Number.isSafeInteger(this.memoryCapacityMb) && this.memoryCapacityMb > 0),
      `memoryCapacityMb must be a positive integer, got ${this.memoryCapacityMb}`,
    );
    assert(
      !/[\p{Cc}/]/u.test(this.prefix),
      `domainPrefix cannot contain '/' or control characters`,
    );
  }

  async capacity(): Promise<HostCapacity> {
    const { stdout } = await this.virsh('capacity', '', ['nodeinfo']);
    const node = parseNodeInfo(stdout);
    return { vcpus: node.vcpus, memoryMb: this.memoryCapacityMb ?? node.memoryMb };
  }

  async listDomains(): Promise<readonly DomainInfo[]> {
    const { stdout } = await this.virsh('list', '', ['list', '--all', '--name']);
    const names = stdout
      .split('\n')
      .map((line) => line.trim())
      .filter((real) => real.length > this.prefix.length && real.startsWith(this.prefix))
      .map((real) => real.slice(this.prefix.length));
    // A domain may vanish between the listing and its read (a transient one stopping): skip it.
    const infos = await mapLimit(names, READ_CONCURRENCY, (name) => this.read('list', name));
    return infos
      .filter((d): d is DomainInfo => d !== null)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  getDomain(name: string): Promise<DomainInfo | null> {
    this.assertOpen();
    if (!isPlausibleName(name)) return Promise.resolve(null);
    return this.read('get', name);
  }

  async define(spec: DomainSpec): Promise<void> {
    const clean = validateSpec(spec);
    const real = this.real(clean.name);
    // Keep the UUID of an existing domain: libvirt refuses the name under a new one. A concurrent
    // define may create the domain between the lookup and ours: look again once.
    for (let attempt = 0; ; attempt++) {
      const uuid = await this.uuidOf(real);
      const xml = toDomainXml(clean, { name: real, type: this.domainType, uuid });
      try {
        await this.defineXml(clean.name, xml);
        return;
      } catch (error) {
        const raced =
          error instanceof HypervisorError &&
          error.cause instanceof CommandError &&
          /already exists with uuid/i.test(error.cause.stderr);
        if (!raced || attempt >= 1) throw error;
      }
    }
  }

  start(name: string): Promise<void> {
    this.assertOpen();
    const run = this.starts.then(() => this.startNow(name));
    this.starts = run.catch(() => undefined);
    return run;
  }

  async shutdown(name: string): Promise<void> {
    this.assertOpen();
    this.knownName(name);
    await this.virsh('shutdown', name, ['shutdown', '--', this.real(name)]);
  }

  async destroy(name: string): Promise<void> {
    this.assertOpen();
    this.knownName(name);
    await this.virsh('destroy', name, ['destroy', '--', this.real(name)]);
  }

  async undefine(name: string): Promise<void> {
    this.assertOpen();
    this.knownName(name);
    await this.virsh('undefine', name, ['undefine', '--', this.real(name)]);
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  // ---- internals ----

  private async startNow(name: string): Promise<void> {
    this.knownName(name);
    // One listing gives the domain (an inactive domain's listed definition is the persistent one,
    // the one that will run) and the memory of the active ones.
    const domains = await this.listDomains();
    const domain = domains.find((d) => d.name === name);
    if (domain === undefined) throw new HypervisorError('no-domain', `no domain named '${name}'`);
    if (isActive(domain.state)) {
      throw new HypervisorError('already-running', `domain '${name}' is already active`);
    }
    const capacityMb = this.memoryCapacityMb ?? (await this.capacity()).memoryMb;
    const usedMb = domains.filter((d) => isActive(d.state)).reduce((sum, d) => sum + d.memoryMb, 0);
    if (usedMb + domain.memoryMb > capacityMb) {
      throw new HypervisorError(
        'out-of-memory',
        `domain '${name}' needs ${domain.memoryMb} MiB; ${Math.max(0, capacityMb - usedMb)} MiB of ${capacityMb} MiB free`,
      );
    }
    await this.virsh('start', name, ['start', '--', this.real(name)]);
  }

  /**
   * `virsh define` of `xml` through a private temporary file: virsh reads a file name, and
   * /dev/stdin is no file when stdin is a socket (as Node's pipes are).
   */
  private async defineXml(name: string, xml: string): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), 'cloudbed-domain-'));
    try {
      const file = join(dir, 'domain.xml');
      await writeFile(file, xml, { mode: 0o600 });
      await this.virsh('define', name, ['define', '--', file]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** The domain as the port reports it, or null when it does not exist. */
  private async read(operation: HypervisorOperation, name: string): Promise<DomainInfo | null> {
    const real = this.real(name);
    try {
      // dumpxml shows the live definition of an active domain, the persistent one otherwise.
      const xml = (await this.virsh(operation, name, ['dumpxml', '--', real])).stdout;
      const state = parseDomainState(
        (await this.virsh(operation, name, ['domstate', '--reason', '--', real])).stdout,
      );
      const parsed = parseDomainXml(xml);
      return {
        name,
        vcpus: parsed.vcpus,
        memoryMb: parsed.memoryMb,
        disks: parsed.disks,
        state,
      };
    } catch (error) {
      if (error instanceof HypervisorError && error.reason === 'no-domain') return null;
      throw error;
    }
  }

  private async uuidOf(real: string): Promise<string | null> {
    try {
      const { stdout } = await this.virsh('define', real, ['domuuid', '--', real]);
      const uuid = stdout.trim();
      return uuid === '' ? null : uuid;
    } catch (error) {
      if (error instanceof HypervisorError && error.reason === 'no-domain') return null;
      throw error;
    }
  }

  private real(name: string): string {
    return `${this.prefix}${name}`;
  }

  /** A name no domain can carry is `no-domain` without asking libvirt. */
  private knownName(name: string): void {
    if (!isPlausibleName(name)) {
      throw new HypervisorError('no-domain', `no domain named '${name}'`);
    }
  }

  private assertOpen(): void {
    assert(!this.closed, 'libvirt hypervisor used after close');
  }

  private async virsh(
    operation: HypervisorOperation,
    name: string,
    args: readonly string[],
  ): Promise<{ stdout: string }> {
    this.assertOpen();
    try {
      return await runCommand(this.virshPath, ['-c', this.uri, ...args], {
        timeoutMs: this.timeoutMs,
      });
    } catch (error) {
      assert(error instanceof CommandError, 'runCommand rejects with CommandError only');
      throw classifyVirshError(operation, name, error, this.timeoutMs);
    }
  }
}

// ---- pure helpers, exported for unit tests ----

/** libvirt's "active": a qemu process exists. */
function isActive(state: DomainState): boolean {
  return state === 'running' || state === 'paused';
}

/** A port name that could name a domain: non-empty, no `/`, no control characters. */
function isPlausibleName(name: string): boolean {
  return typeof name === 'string' && name.length > 0 && !/[\p{Cc}/]/u.test(name);
}

/**
 * Validates a spec as the simulated host and libvirt's parser do (see `validateDomainSpec`), and
 * refuses control characters in disk targets and sources, which would break the XML; throws
 * `invalid-definition`. Returns a copy holding only the port's fields.
 */
export function validateSpec(spec: DomainSpec): DomainSpec {
  return validateDomainSpec(spec, (disk) =>
    /\p{Cc}/u.test(disk.target) || /\p{Cc}/u.test(disk.source)
      ? 'disk target or source contains control characters'
      : null,
  );
}

/** Escapes text for XML content and single- or double-quoted attributes. */
export function escapeXml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll("'", '&apos;')
    .replaceAll('"', '&quot;');
}

/** Reverses {@link escapeXml} and numeric character references. */
export function unescapeXml(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|amp|lt|gt|apos|quot);/gi, (whole, ref: string) => {
    const lower = ref.toLowerCase();
    if (lower.startsWith('#x')) return String.fromCodePoint(parseInt(lower.slice(2), 16));
    if (lower.startsWith('#')) return String.fromCodePoint(parseInt(lower.slice(1), 10));
    const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', apos: "'", quot: '"' };
    return named[lower] ?? whole;
  });
}

/** How {@link toDomainXml} names and types the domain. */
export interface DomainXmlOptions {
  /** The libvirt name (prefix included). */
  readonly name: string;
  readonly type: 'kvm' | 'qemu';
  /** The existing domain's UUID when redefining; null lets libvirt generate one. */
  readonly uuid: string | null;
}

/** The libvirt domain XML for a validated spec. */
export function toDomainXml(spec: DomainSpec, options: DomainXmlOptions): string {
  const disks = spec.disks.map((disk) =>
    [
      `    <disk type='file' device='disk'>`,
      `      <driver name='qemu' type='raw'/>`,
      `      <source file='${escapeXml(disk.source)}'/>`,
      `      <target dev='${escapeXml(disk.target)}' bus='virtio'/>`,
      `    </disk>`,
    ].join('\n'),
  );
  return [
    `<domain type='${options.type}'>`,
    `  <name>${escapeXml(options.name)}</name>`,
    ...(options.uuid === null ? [] : [`  <uuid>${escapeXml(options.uuid)}</uuid>`]),
    `  <memory unit='MiB'>${spec.memoryMb}</memory>`,
    `  <currentMemory unit='MiB'>${spec.memoryMb}</currentMemory>`,
    `  <vcpu placement='static'>${spec.vcpus}</vcpu>`,
    `  <os>`,
    `    <type>hvm</type>`,
    `    <boot dev='hd'/>`,
    `  </os>`,
    // ACPI: the guest sees the power button `shutdown` presses.
    `  <features>`,
    `    <acpi/>`,
    `    <apic/>`,
    `  </features>`,
    `  <on_poweroff>destroy</on_poweroff>`,
    `  <on_reboot>restart</on_reboot>`,
    `  <on_crash>destroy</on_crash>`,
    `  <devices>`,
    ...disks,
    `    <serial type='pty'>`,
    `      <target port='0'/>`,
    `    </serial>`,
    `    <console type='pty'>`,
    `      <target type='serial' port='0'/>`,
    `    </console>`,
    `  </devices>`,
    `</domain>`,
    '',
  ].join('\n');
}

/** What {@link parseDomainXml} reads from `virsh dumpxml`. */
export interface ParsedDomainXml {
  readonly name: string;
  readonly uuid: string | null;
  readonly vcpus: number;
  /** Rounded up to whole MiB. */
  readonly memoryMb: number;
  /** File or block disks (`device='disk'`), in document order. */
  readonly disks: readonly DomainDisk[];
}

/** Bytes per unit of libvirt's memory `unit` attribute (case as libvirt accepts it). */
const MEMORY_UNITS: Record<string, number> = {
  b: 1,
  bytes: 1,
  kb: 1000,
  k: 1024,
  kib: 1024,
  mb: 1000 ** 2,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  gb: 1000 ** 3,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  tb: 1000 ** 4,
  t: 1024 ** 4,
  tib: 1024 ** 4,
};

/** The value of attribute `name` in a start tag's attribute text, unescaped; null if absent. */
function attribute(attributes: string, name: string): string | null {
  const match = new RegExp(`(?:^|\\s)${name}\\s*=\\s*(?:'([^']*)'|"([^"]*)")`).exec(attributes);
  if (match === null) return null;
  return unescapeXml(match[1] ?? match[2] ?? '');
}

/** The first `<tag attrs>text</tag>` of `xml`: its attribute text and unescaped text. */
function element(xml: string, tag: string): { attributes: string; text: string } | null {
  const match = new RegExp(`<${tag}(\\s[^>]*)?>([^<]*)</${tag}>`).exec(xml);
  if (match === null) return null;
  return { attributes: match[1] ?? '', text: unescapeXml(match[2] ?? '').trim() };
}

/**
 * Reads name, UUID, vCPUs (the `current` count when set), memory and disks from domain XML as
 * `virsh dumpxml` prints it. Throws a plain Error on XML it cannot read (libvirt's never is).
 */
export function parseDomainXml(xml: string): ParsedDomainXml {
  const name = element(xml, 'name');
  const vcpu = element(xml, 'vcpu');
  const memory = element(xml, 'memory');
  if (name === null || vcpu === null || memory === null) {
    throw new Error(`domain XML without name, vcpu or memory: ${xml.slice(0, 200)}`);
  }
  const vcpus = Number(attribute(vcpu.attributes, 'current') ?? vcpu.text);
  const unit = (attribute(memory.attributes, 'unit') ?? 'KiB').toLowerCase();
  const perUnit = MEMORY_UNITS[unit];
  const amount = Number(memory.text);
  if (!Number.isSafeInteger(vcpus) || perUnit === undefined || !Number.isFinite(amount)) {
    throw new Error(`unreadable vcpu or memory in domain XML of '${name.text}'`);
  }
  const disks: DomainDisk[] = [];
  for (const match of xml.matchAll(/<disk(\s[^>]*)?>([\s\S]*?)<\/disk>/g)) {
    const device = attribute(match[1] ?? '', 'device') ?? 'disk';
    if (device !== 'disk') continue;
    const body = match[2] ?? '';
    const source = /<source(\s[^>]*?)\/?>/.exec(body);
    const target = /<target(\s[^>]*?)\/?>/.exec(body);
    const path =
      source === null
        ? null
        : (attribute(source[1] ?? '', 'file') ?? attribute(source[1] ?? '', 'dev'));
    const dev = target === null ? null : attribute(target[1] ?? '', 'dev');
    if (path !== null && dev !== null) disks.push({ target: dev, source: path });
  }
  const uuid = element(xml, 'uuid');
  return {
    name: name.text,
    uuid: uuid === null ? null : uuid.text,
    vcpus,
    memoryMb: Math.ceil((amount * perUnit) / 1024 ** 2),
    disks,
  };
}

/**
 * The port's state for `virsh domstate [--reason]` output: `running (booted)`, `shut off
 * (crashed)`, `paused (user)`, `in shutdown`, …
 */
export function parseDomainState(output: string): DomainState {
  const line = output.trim().split('\n')[0]?.trim().toLowerCase() ?? '';
  const match = /^([a-z ]+?)\s*(?:\(([^)]*)\))?$/.exec(line);
  const state = match?.[1] ?? line;
  const reason = match?.[2] ?? '';
  switch (state) {
    case 'running':
    case 'blocked':
    case 'idle':
    case 'in shutdown':
      return 'running';
    case 'paused':
    case 'pmsuspended':
      return 'paused';
    case 'crashed':
      return 'crashed';
    case 'shut off':
      return reason === 'crashed' ? 'crashed' : 'shutoff';
    default:
      throw new Error(`unknown libvirt domain state '${line}'`);
  }
}

/** CPUs and memory (whole MiB, rounded down) from `virsh nodeinfo`. */
export function parseNodeInfo(output: string): HostCapacity {
  const cpus = /^CPU\(s\):\s*(\d+)\s*$/m.exec(output);
  const memory = /^Memory size:\s*(\d+)\s*KiB\s*$/m.exec(output);
  if (cpus === null || memory === null) {
    throw new Error(`unreadable virsh nodeinfo output: ${output.slice(0, 200)}`);
  }
  return { vcpus: Number(cpus[1]), memoryMb: Math.floor(Number(memory[1]) / 1024) };
}

/** stderr patterns of a virsh that cannot talk to libvirtd. */
const UNAVAILABLE =
  /failed to connect|cannot connect|no connection driver|end of file while reading data|cannot recv data|cannot write data|connection reset|broken pipe|client socket is closed|is libvirtd running|no such file or directory.*sock/i;

/**
 * Maps a failed virsh command of `operation` on domain `name` (the port's name) to the port's
 * error: a {@link HypervisorError}, or a {@link TimeoutError} when the command timed out. The
 * CommandError becomes the `cause`.
 */
export function classifyVirshError(
  operation: HypervisorOperation,
  name: string,
  error: CommandError,
  timeoutMs: number,
): HypervisorError | TimeoutError {
  const cause = { cause: error };
  if (error.timedOut) return new TimeoutError(`virsh ${operation} '${name}'`, timeoutMs, error);
  const stderr = error.stderr;
  const detail = stderr.replace(/^error:\s*/gim, '').replace(/\n+/g, '; ');
  const fail = (
    reason: ConstructorParameters<typeof HypervisorError>[0],
    message: string,
    retryable = false,
  ): HypervisorError => new HypervisorError(reason, message, { retryable, ...cause });
  if (error.details.notFound) {
    return fail('unavailable', `virsh is not installed: ${error.message}`, true);
  }
  if (UNAVAILABLE.test(stderr) && !/cannot access storage file/i.test(stderr)) {
    return fail('unavailable', `libvirt is unavailable: ${detail}`, true);
  }
  if (/failed to get domain|domain not found|no domain with matching/i.test(stderr)) {
    return fail('no-domain', `no domain named '${name}'`);
  }
  if (/cannot allocate memory|out of memory|not enough memory/i.test(stderr)) {
    return fail('out-of-memory', `domain '${name}' does not fit in the host's memory: ${detail}`);
  }
  switch (operation) {
    case 'start':
      if (/already active|already running/i.test(stderr)) {
        return fail('already-running', `domain '${name}' is already active`);
      }
      {
        const missing = /cannot access storage file '([^']*)'/i.exec(stderr);
        if (missing !== null) {
          return fail(
            'invalid-definition',
            `domain '${name}' cannot start: its disk image '${missing[1] ?? ''}' does not exist or cannot be read (${detail})`,
          );
        }
      }
      break;
    case 'shutdown':
    case 'destroy':
      if (/not running|operation is not valid/i.test(stderr)) {
        return fail('not-running', `domain '${name}' is not running`);
      }
      break;
    case 'undefine':
      if (/transient|operation is not valid/i.test(stderr)) {
        return fail('domain-active', `domain '${name}' is transient: nothing to undefine`);
      }
      break;
    case 'define':
      if (
        /xml error|unsupported configuration|invalid argument|xml document|internal error/i.test(
          stderr,
        )
      ) {
        return fail('invalid-definition', `libvirt refused the definition of '${name}': ${detail}`);
      }
      break;
    case 'capacity':
    case 'list':
    case 'get':
      break;
  }
  // Anything else is libvirt misbehaving, not a verdict on the request: worth a retry.
  return fail('unavailable', `virsh ${operation} '${name}' failed: ${detail}`, true);
}

/** Maps `items` through `fn` with at most `limit` calls in flight; results in input order. */
async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
