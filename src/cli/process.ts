/**
 * `cloudbed process <role> --config FILE [--host NAME]`: runs ONE control-plane process for real
 * (src/staging/roles.ts) in the foreground. Parses and checks the arguments against the staging
 * file; `cloudbed staging up` starts one of these per process, detached, with its output in a log
 * file, and running one by hand (after a crash, or to watch it) is the same thing.
 */
import { parse, UsageError } from './args.ts';
import {
  loadStagingConfig,
  StagingConfigError,
  type StagingConfig,
  type StagingHost,
} from '../staging/config.ts';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { mutantProblem, mutantTree } from '../staging/mutants.ts';
import { PROCESS_ROLES, runProcess, type ProcessRole } from '../staging/roles.ts';

export const PROCESS_HELP = `Usage: cloudbed process <role> --config FILE [--host NAME | --instance N]
                        [--mutant NAME]

Runs one cloudbed control-plane process in the foreground against the real services of a staging
file (see staging/staging.example.yaml). 'cloudbed staging up' starts every process this way.

Roles:
  api              the API over HTTP on 127.0.0.1:<api.port>
  mainloop         the reconciling main loop, instance N (--instance, default 1) of
                   mainLoop.instances
  background       ingests agent reports into observed state
  compute-agent    the agent of compute host NAME (--host), driving libvirt
  storage-agent    the agent of storage node NAME (--host), driving ZFS

Options:
  --config FILE    the staging file (required)
  --host NAME      the host of an agent (required for the agent roles)
  --instance N     which main loop this is, 1..mainLoop.instances (mainloop only)
  --mutant NAME    run a known-broken variant of the control plane (no-store-fence, no-fence),
                   from a patched copy of the sources under <stateDir>/mutants/; refused unless
                   the staging file says 'mutants: { allow: true }'
  -h, --help       show this help

Logs are JSON lines on stderr. SIGTERM or SIGINT stops the process gracefully.
Exit codes: 0 stopped by a signal, 1 failed (a service missing, a bug), 2 bad input.
`;

export async function processCommand(argv: readonly string[]): Promise<number | undefined> {
  const { values, positionals } = parse('process', argv, {
    config: { type: 'string' },
    host: { type: 'string' },
    instance: { type: 'string' },
    mutant: { type: 'string' },
  });
  const [role, ...extra] = positionals;
  if (role === undefined)
    throw new UsageError(
      `cloudbed process: missing role; one of ${PROCESS_ROLES.join(', ')} (see cloudbed process --help)`,
    );
  if (extra.length > 0) throw new UsageError(`cloudbed process: unexpected argument '${extra[0]}'`);
  if (!(PROCESS_ROLES as readonly string[]).includes(role))
    throw new UsageError(
      `cloudbed process: unknown role '${role}'; one of ${PROCESS_ROLES.join(', ')}`,
    );
  if (values.config === undefined)
    throw new UsageError('cloudbed process: --config FILE is required');
  let config: StagingConfig;
  try {
    config = await loadStagingConfig(values.config);
  } catch (error) {
    if (error instanceof StagingConfigError) throw new UsageError(error.message);
    throw error;
  }
  const host = hostOf(config, role as ProcessRole, values.host);
  const instance = instanceOf(config, role, values.instance);
  if (values.mutant !== undefined) {
    const problem = mutantProblem(config.mutants.allow, values.mutant);
    if (problem !== null) throw new UsageError(`cloudbed process: --mutant: ${problem}`);
    // The mutant's copy of the sources runs this very process: same pid, same arguments.
    const tree = mutantTree(config.stateDir, values.mutant);
    const copy = (await import(pathToFileURL(join(tree, 'src', 'staging', 'roles.ts')).href)) as {
      runProcess: typeof runProcess;
    };
    return copy.runProcess(config, role as ProcessRole, host, instance);
  }
  return runProcess(config, role as ProcessRole, host, instance);
}

/** The main loop instance, checked against the staging file; 1 for other roles. */
function instanceOf(config: StagingConfig, role: string, value: string | undefined): number {
  if (value === undefined) return 1;
  if (role !== 'mainloop')
    throw new UsageError('cloudbed process: --instance applies only to the mainloop role');
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > config.mainLoop.instances)
    throw new UsageError(
      `cloudbed process: --instance must be 1..${config.mainLoop.instances} (mainLoop.instances of ${config.file}), got '${value}'`,
    );
  return n;
}

/** The host an agent role runs for, checked against the staging file; undefined for other roles. */
function hostOf(
  config: StagingConfig,
  role: ProcessRole,
  name: string | undefined,
): StagingHost | undefined {
  if (role !== 'compute-agent' && role !== 'storage-agent') {
    if (name !== undefined)
      throw new UsageError(`cloudbed process: --host applies only to the agent roles`);
    return undefined;
  }
  const kind = role === 'compute-agent' ? 'compute' : 'storage';
  if (name === undefined)
    throw new UsageError(`cloudbed process: ${role} needs --host NAME (a ${kind} host)`);
  const host = config.hosts.find((h) => h.name === name);
  const names = config.hosts.filter((h) => h.kind === kind).map((h) => h.name);
  if (host === undefined || host.kind !== kind)
    throw new UsageError(
      `cloudbed process: '${name}' is no ${kind} host of ${config.file}; ${kind} hosts: ${names.join(', ')}`,
    );
  return host;
}
