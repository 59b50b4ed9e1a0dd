/**
 * The one service loop both agents run; each agent configures it with an {@link AgentRole}: which
 * commands it executes, how it applies one, its housekeeping and what its inventory reads.
 *
 * The loop subscribes to the host's command channel, parses commands (refusing malformed and
 * misrouted ones), rejects stale fencing tokens at once (memory) and again before executing
 * (memory and store), runs commands one at a time per resource, publishes a result for every
 * command and an inventory after commands, and at start and every interval runs the housekeeping
 * and an inventory. Port errors become result reasons; bugs end the agent.
 *
 * Crash-only: the queue, the fencing memory and the inventory pump are caches; the store's fences
 * and the host's state are the truth, and the main loop re-sends every command until it observes
 * the effect.
 */
import { assert } from '../../lib/assert.ts';
import {
  commandResource,
  isAgentCommand,
  type AgentCommandType,
  type InventoryReport,
} from '../../model/commands.ts';
import { CHANNELS, type BusMessage } from '../../ports/bus.ts';
import {
  checkFence,
  describe,
  errorReason,
  FenceMemory,
  housekeep,
  InventoryPump,
  publishQuietly,
  publishResult,
  SERVICE_DEFAULTS,
  Service,
  STALE_TOKEN,
  type ServiceDeps,
  type ServiceOptions,
} from './agent-kit.ts';
import {
  commandIdOf,
  INVALID_COMMAND,
  parseCommand,
  resourceOf,
  type CommandOf,
} from './command-shape.ts';

/** Tunables every agent has. */
export interface AgentOptions extends ServiceOptions {
  /** Period of inventories and housekeeping (orphans, images), ms. Default 10 000. */
  readonly inventoryIntervalMs: number;
}

/** Defaults of {@link AgentOptions}. */
export const AGENT_DEFAULTS: AgentOptions = { ...SERVICE_DEFAULTS, inventoryIntervalMs: 10_000 };

/** What every agent needs. */
export interface AgentDeps<Options> extends ServiceDeps<Options> {
  /** This host's id (the host row's id): names the command channel and the inventory. */
  readonly hostId: string;
}

/** `Omit` applied to each member of a union (plain `Omit` merges the members). */
type OmitEach<U, K extends PropertyKey> = U extends unknown ? Omit<U, K> : never;

/** An inventory report without what the loop adds: `type`, `hostId`, `atMs`. */
export type InventoryBody = OmitEach<InventoryReport, 'type' | 'hostId' | 'atMs'>;

/**
 * What makes an agent a compute or a storage agent. `Capacity` and `Contents` are the two reads an
 * inventory takes, in this order, before {@link AgentRole.inventory} turns them into the report.
 */
export interface AgentRole<T extends AgentCommandType, Capacity, Contents> {
  /** The command types this agent executes; another agent's command is refused as misrouted. */
  readonly commands: readonly T[];
  /** The kind of host, in the refusal of a misrouted command: `a compute host`. */
  readonly place: string;
  /** The port {@link AgentService.call} bounds, naming its timeouts: `hypervisor.start`. */
  readonly port: string;
  /** Applies a command whose token passed the fence; port errors become the result's reason. */
  readonly apply: (command: CommandOf<T>) => Promise<void>;
  /** At start and every interval, before the inventory. Must not throw except for bugs. */
  readonly housekeeping: () => Promise<void>;
  /** The inventory's first read (the host's capacity); throwing skips the inventory. */
  readonly capacity: () => Promise<Capacity>;
  /** The inventory's second read (domains, datasets); throwing skips the inventory. */
  readonly contents: () => Promise<Contents>;
  /** The inventory the two reads make (the loop adds its type, host and time). */
  readonly inventory: (capacity: Capacity, contents: Contents) => InventoryBody;
}

/** The agent loop: an agent's queue, fences, commands, results and inventories. */
export class AgentService<
  T extends AgentCommandType,
  Options extends AgentOptions,
  Capacity,
  Contents,
> extends Service<Options> {
  private readonly hostId: string;
  private readonly fences = new FenceMemory();
  private readonly pump: InventoryPump;

  constructor(
    deps: AgentDeps<Options>,
    defaults: Options,
    private readonly role: AgentRole<T, Capacity, Contents>,
  ) {
    super(deps, defaults);
    this.hostId = deps.hostId;
    assert(this.options.operationTimeoutMs > 0, 'operationTimeoutMs must be > 0');
    this.pump = new InventoryPump(() => this.publishInventory());
  }

  /** Runs the agent until its signal aborts (forever without one). Rejects only on a bug. */
  start(): Promise<void> {
    return this.run(
      CHANNELS.agent(this.hostId),
      (message) => this.onMessage(message),
      this.options.inventoryIntervalMs,
      async () => {
        await this.role.housekeeping();
        await this.pump.request();
      },
    );
  }

  /** A call of the role's port bounded by `operationTimeoutMs`. */
  call<R>(operation: string, promise: Promise<R>): Promise<R> {
    return this.bounded(promise, `${this.role.port}.${operation}`);
  }

  /** Runs `fn` as housekeeping on `key`, unless a command for it is queued (see {@link housekeep}). */
  housekeep(key: string, fn: () => Promise<void>): Promise<void> {
    return housekeep(this.queue, key, fn);
  }

  // ---- commands ----

  private onMessage(message: BusMessage): void {
    const { runtime } = this.deps;
    const parsed = parseCommand(this.role.commands, message);
    if (parsed === null) {
      // Not ours: another agent's command is misrouted; anything else is ignored.
      if (isAgentCommand(message))
        this.refuse(message, `${message.type} sent to ${this.role.place}`);
      return;
    }
    if (!parsed.ok) {
      this.refuse(message, parsed.problem);
      return;
    }
    const command = parsed.command;
    const resource = commandResource(command);
    if (command.token < this.fences.get(resource)) {
      void this.report(command, STALE_TOKEN);
      return;
    }
    this.fences.see(resource, command.token);
    const outcome = this.queue.enqueue(resource, {
      kind: 'command',
      run: () => this.execute(command),
      onReplaced: () =>
        runtime.log.info('agent.command-replaced', { commandId: command.commandId }),
    });
    if (outcome === 'full') {
      runtime.log.warn('agent.queue-full', { commandId: command.commandId });
    }
  }

  private refuse(message: BusMessage, problem: string): void {
    const { runtime, bus } = this.deps;
    runtime.log.warn('agent.invalid-command', { type: message.type, problem });
    const commandId = commandIdOf(message);
    if (commandId === null) return;
    void publishResult(runtime, bus, {
      commandId,
      resource: resourceOf(message),
      ok: false,
      error: INVALID_COMMAND,
      hostId: this.hostId,
    });
  }

  private report(command: CommandOf<T>, error: string | null): Promise<void> {
    const { runtime, bus } = this.deps;
    return publishResult(runtime, bus, {
      commandId: command.commandId,
      resource: commandResource(command),
      ok: error === null,
      ...(error === null ? {} : { error }),
      hostId: this.hostId,
    });
  }

  private async execute(command: CommandOf<T>): Promise<void> {
    const { runtime, store } = this.deps;
    const stale = await checkFence(
      { runtime, store },
      this.fences,
      commandResource(command),
      command.token,
      this.options.operationTimeoutMs,
    );
    let error: string | null = stale;
    if (stale === null) {
      try {
        await this.role.apply(command);
      } catch (failure) {
        error = errorReason(failure);
        // A failed command is what an operator looks for first: warn, not info.
        runtime.log.warn('agent.command-failed', {
          commandId: command.commandId,
          error: describe(failure),
        });
      }
    }
    await this.report(command, error);
    void this.pump.request();
  }

  // ---- inventory ----

  private async publishInventory(): Promise<void> {
    const { runtime, bus } = this.deps;
    // Taken before the reads: the background drops an inventory older than one it has seen.
    const atMs = runtime.clock.nowMs();
    let capacity: Capacity;
    let contents: Contents;
    try {
      capacity = await this.role.capacity();
      contents = await this.role.contents();
    } catch (error) {
      // No inventory while the host is unreachable: silence is what marks a host down.
      runtime.log.warn('agent.inventory-failed', { error: describe(error) });
      return;
    }
    const report: InventoryReport = {
      type: 'inventory',
      hostId: this.hostId,
      ...this.role.inventory(capacity, contents),
    };
    await publishQuietly(runtime, bus, CHANNELS.reports, {
      ...(report as unknown as BusMessage),
      atMs,
    });
  }
}
