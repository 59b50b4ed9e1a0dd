/** The public API: createApi (the transport-independent router), its shapes and the admin seeding. */
export { createApi } from './api.ts';
export {
  bootstrapAdmin,
  BootstrapError,
  type AdminCredentials,
  type BootstrapOptions,
} from './bootstrap.ts';
// The request, response, dependency and limit shapes: all of types.ts is public.
export * from './types.ts';
