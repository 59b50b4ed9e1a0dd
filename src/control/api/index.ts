/** The public API: createApi (the transport-independent router), its shapes and the admin seeding. */
export { createApi } from './api.ts';
export {
  bootstrapAdmin,
  BootstrapError,
  type AdminCredentials,
  type BootstrapOptions,
} from './bootstrap.ts';
export {
  DEFAULT_LIMITS,
  type Api,
  type ApiDeps,
  type ApiLimits,
  type ApiRequest,
  type ApiResponse,
} from './types.ts';
