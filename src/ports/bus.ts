/**
 * The bus: publish/subscribe of change notices, Redis pub/sub semantics. A message reaches the
 * subscribers connected at the moment it is published, at most once each, possibly never: nothing
 * is queued or acknowledged. The control plane must therefore treat every message as a hint and
 * re-derive truth from the store (level-triggered), and re-send until it observes the effect.
 */
import type { Json } from './event-store.ts';

/** A message on the bus. `type` is dotted lowercase (`vm.start`, `changed`, `inventory`). */
export interface BusMessage {
  readonly type: string;
  readonly [field: string]: Json;
}

/** Called for every message received on a channel, in delivery order. */
export type BusHandler = (message: BusMessage, channel: string) => void;

export interface Subscription {
  /** Stops delivery to this handler. Idempotent. */
  unsubscribe(): Promise<void>;
}

export interface Bus {
  /**
   * Publishes to `channel`. Resolves with the number of subscribers it reached at the server (as
   * Redis PUBLISH does); delivery may still be lost or delayed afterwards.
   */
  publish(channel: string, message: BusMessage): Promise<number>;
  /** Subscribes `handler` to `channel`. Resolves once the subscription is active. */
  subscribe(channel: string, handler: BusHandler): Promise<Subscription>;
  /** Closes connections; subscriptions end. */
  close(): Promise<void>;
}

/** Channel names, in one place so agents and the main loop agree. */
export const CHANNELS = {
  /** Change notices: `{type:'changed', stream, resourceType}`, published by the api and the background. */
  changes: 'cloudbed.changes',
  /** Commands for one compute or storage agent. */
  agent: (hostId: string): string => `cloudbed.agent.${hostId}`,
  /** Reports from agents (results, inventories, heartbeats) to the background service. */
  reports: 'cloudbed.reports',
} as const;
