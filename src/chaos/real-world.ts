/**
 * The real hosts of a staging deployment as the simulator's checkers see a world
 * ({@link CheckedWorld}): each compute host's libvirt domains and each storage node's ZFS datasets,
 * polled through the same prefix-confined adapters the agents use, so names are the ports' names
 * (a domain is its VM id, a dataset `<pool>/<volume>[@<snapshot>]`) and memory is the VM's own
 * figure. Every poll diffs the new inventory against the last one and tells the watchers what
 * changed, which is what the incremental checkers need; between polls the view does not move.
 */
import type {
  CheckedComputeHost,
  CheckedStorageNode,
  CheckedWorld,
  DomainView,
} from '../sim/checkers.ts';
import type { DomainInfo, HostCapacity } from '../ports/hypervisor.ts';
import type { DatasetInfo } from '../ports/storage.ts';
import type { StagingConfig, StagingHost } from '../staging/config.ts';
import { openHypervisor, openStorage } from '../staging/wiring.ts';

type ComputeHost = Extract<StagingHost, { kind: 'compute' }>;
type StorageHost = Extract<StagingHost, { kind: 'storage' }>;

/** One compute host's domains as of the last poll. */
export class PolledComputeHost implements CheckedComputeHost {
  readonly capacity: HostCapacity;
  status: 'up' | 'down' = 'up';
  private readonly current = new Map<string, { info: DomainInfo; key: string }>();
  private readonly watchers: ((name: string) => void)[] = [];

  constructor(capacity: HostCapacity) {
    this.capacity = capacity;
  }

  domains(): readonly DomainInfo[] {
    return [...this.current.values()]
      .map((d) => d.info)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  domain(name: string): DomainView | undefined {
    const found = this.current.get(name)?.info;
    if (found === undefined) return undefined;
    const active = found.state === 'running' || found.state === 'paused';
    return { state: found.state, live: active ? found : null };
  }

  watch(onChange: (name: string) => void): void {
    this.watchers.push(onChange);
  }

  /** Takes a new inventory; returns the names that changed. */
  update(domains: readonly DomainInfo[]): string[] {
    const changed: string[] = [];
    const seen = new Set<string>();
    for (const info of domains) {
      seen.add(info.name);
      const key = JSON.stringify(info);
      if (this.current.get(info.name)?.key === key) continue;
      this.current.set(info.name, { info, key });
      changed.push(info.name);
    }
    for (const name of [...this.current.keys()])
      if (!seen.has(name)) {
        this.current.delete(name);
        changed.push(name);
      }
    for (const name of changed) for (const watcher of this.watchers) watcher(name);
    return changed;
  }
}

/** One storage node's datasets as of the last poll. */
export class PolledStorageNode implements CheckedStorageNode {
  private readonly current = new Set<string>();
  private readonly watchers: ((name: string, present: boolean) => void)[] = [];

  datasets(): readonly { readonly name: string }[] {
    return [...this.current].sort().map((name) => ({ name }));
  }

  watch(onChange: (name: string, present: boolean) => void): void {
    this.watchers.push(onChange);
  }

  /** Takes a new inventory; returns how many datasets appeared or vanished. */
  update(datasets: readonly DatasetInfo[]): number {
    const seen = new Set(datasets.map((d) => d.name));
    const changes: [string, boolean][] = [];
    for (const name of seen) if (!this.current.has(name)) changes.push([name, true]);
    for (const name of this.current) if (!seen.has(name)) changes.push([name, false]);
    for (const [name, present] of changes) {
      if (present) this.current.add(name);
      else this.current.delete(name);
      for (const watcher of this.watchers) watcher(name, present);
    }
    return changes.length;
  }
}

/** An inventory of the whole deployment at one moment, for the run directory. */
export interface Inventory {
  readonly domains: Readonly<Record<string, readonly DomainInfo[]>>;
  readonly datasets: Readonly<Record<string, readonly string[]>>;
}

/** The deployment's hosts, by host id, polled on demand. */
export class RealWorld implements CheckedWorld {
  readonly computeHosts = new Map<string, PolledComputeHost>();
  readonly storageNodes = new Map<string, PolledStorageNode>();
  private readonly computes: { id: string; host: ComputeHost }[] = [];
  private readonly nodes: { id: string; host: StorageHost }[] = [];

  /** `ids`: the host id the database gave each host of the staging file, by name. */
  constructor(
    private readonly config: StagingConfig,
    ids: ReadonlyMap<string, string>,
  ) {
    for (const host of config.hosts) {
      const id = ids.get(host.name);
      if (id === undefined) throw new Error(`host ${host.name} is not registered`);
      if (host.kind === 'compute') {
        this.computes.push({ id, host });
        this.computeHosts.set(
          id,
          new PolledComputeHost({ vcpus: host.vcpus, memoryMb: host.memoryMb }),
        );
      } else {
        this.nodes.push({ id, host });
        this.storageNodes.set(id, new PolledStorageNode());
      }
    }
  }

  /** Marks a compute host down or up (a host crash in progress), by name. */
  setStatus(name: string, status: 'up' | 'down'): void {
    const entry = this.computes.find((c) => c.host.name === name);
    if (entry !== undefined) this.computeHosts.get(entry.id)!.status = status;
  }

  /**
   * Lists every host again and feeds the differences to the watchers. A fresh adapter per poll, so
   * the memory ledger the agents keep is read as it is now.
   */
  async poll(): Promise<Inventory> {
    const domains: Record<string, readonly DomainInfo[]> = {};
    const datasets: Record<string, readonly string[]> = {};
    for (const { id, host } of this.computes) {
      const hypervisor = openHypervisor(this.config, host);
      try {
        const listed = await hypervisor.listDomains();
        this.computeHosts.get(id)!.update(listed);
        domains[host.name] = listed;
      } finally {
        await hypervisor.close();
      }
    }
    for (const { id, host } of this.nodes) {
      const storage = openStorage(this.config, host);
      try {
        const listed = await storage.list();
        this.storageNodes.get(id)!.update(listed);
        datasets[host.name] = listed.map((d) => d.name);
      } finally {
        await storage.close();
      }
    }
    return { domains, datasets };
  }
}
