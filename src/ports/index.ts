/** The ports the control plane depends on: interfaces only, implemented by src/sim and src/adapters. */
export type * from './runtime.ts';
export type * from './event-store.ts';
export type * from './bus.ts';
export type * from './locks.ts';
export type * from './hypervisor.ts';
export type * from './storage.ts';
export * from './errors.ts';
export { ConcurrencyError, StaleTokenError } from './event-store.ts';
export { CHANNELS } from './bus.ts';
export { HypervisorError } from './hypervisor.ts';
export { StorageError } from './storage.ts';
