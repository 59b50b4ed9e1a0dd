/**
 * Bus faults: a delivery filter that drops, duplicates and delays messages on their way from the
 * Redis server to a subscriber. Redis pub/sub promises none of these away — messages are not
 * queued, a slow or reconnecting subscriber loses them — so the control plane must converge anyway.
 * Delays larger than the gap to later messages reorder them.
 */
import { assertProbability } from '../lib/assert.ts';
import type { Prng } from '../lib/prng.ts';

/** Probabilities of each fault per delivery; all in [0, 1]. */
export interface BusFaultOptions {
  readonly dropProbability: number;
  readonly duplicateProbability: number;
  readonly delayProbability: number;
  /** Largest extra delay of a delayed copy, ms. */
  readonly delayMsMax: number;
}

/** One delivery as the fault sees it: the delay the healthy network would apply. */
export interface Delivery {
  readonly delayMs: number;
}

/** Returns the delays at which to deliver copies of one message: `[]` drops it. */
export type DeliveryFaults = (delivery: Delivery) => readonly number[];

/** A deterministic delivery filter drawing from `random`. */
export function createBusFaults(options: BusFaultOptions, random: Prng): DeliveryFaults {
  assertProbability(options.dropProbability, 'dropProbability');
  assertProbability(options.duplicateProbability, 'duplicateProbability');
  assertProbability(options.delayProbability, 'delayProbability');
  const delayed = (base: number): number =>
    random.chance(options.delayProbability) ? base + random.float() * options.delayMsMax : base;
  return (delivery) => {
    // Every draw happens on every delivery, so changing one probability does not shift the others.
    const drop = random.chance(options.dropProbability);
    const duplicate = random.chance(options.duplicateProbability);
    const first = delayed(delivery.delayMs);
    const second = delayed(delivery.delayMs);
    if (drop) return [];
    return duplicate ? [first, second] : [first];
  };
}
