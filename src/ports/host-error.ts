/**
 * The error both host ports raise (the Hypervisor's libvirt conditions, the Storage's ZFS ones): a
 * boundary failure whose `reason` names the host's condition, with the code `<port>.<reason>`.
 * One base lets the control plane read a reason without knowing which port failed.
 */
import { PortError, type PortErrorOptions } from './errors.ts';

/** A {@link PortError} of a host port; `Reason` is the port's closed set of conditions. */
export class HostError<Reason extends string> extends PortError {
  override name = 'HostError';
  constructor(
    /** The port, first part of the code: `hypervisor`, `storage`. */
    port: string,
    /** The host's condition: `no-domain`, `busy`, `unavailable`, … */
    readonly reason: Reason,
    message: string,
    options: PortErrorOptions = {},
  ) {
    super(`${port}.${reason}`, message, options);
  }
}

/**
 * The base class of one port's errors: a {@link HostError} of `port` whose instances are named
 * `name` (in messages and logs), constructed from a reason, a message and the options.
 */
export function hostErrorOf<Reason extends string>(port: string, name: string) {
  return class extends HostError<Reason> {
    override name = name;
    constructor(reason: Reason, message: string, options: PortErrorOptions = {}) {
      super(port, reason, message, options);
    }
  };
}

/** True for an error of either host port (a {@link HostError}), with its `reason` as text. */
export function isHostError(error: unknown): error is HostError<string> {
  return error instanceof HostError;
}
