/** The ports the control plane depends on: interfaces only, implemented by src/sim and src/adapters. */
export type * from './runtime.ts';
