/**
 * `cloudbed staging up|down|status|restart|kill|supervise`: parses the arguments, loads the staging file and
 * runs the deployment operation (src/staging/deployment.ts), printing its progress.
 */
import { parse, UsageError } from './args.ts';
import { loadStagingConfig, StagingConfigError, type StagingConfig } from '../staging/config.ts';
import {
  down,
  kill,
  restart,
  StagingInputError,
  status,
  superviseForeground,
  up,
  type Report,
} from '../staging/deployment.ts';
import { processSpecs, type ProcessSpec } from '../staging/supervisor.ts';

export const STAGING_HELP = `Usage: cloudbed staging <up|down|status|restart|kill|supervise> [options]

Runs the cloudbed control plane as separate OS processes against the real PostgreSQL, Redis,
ZooKeeper, libvirt and ZFS of this machine, as a staging file describes (copy
staging/staging.example.yaml). Everything the run creates carries the file's prefix. The services
and their hazards: docs/infrastructure.md.

Subcommands:
  up [--no-restart]  check the API port and the services, migrate, bootstrap the admin, register
                     the hosts, start every process that is not running (those whose service is
                     down are reported, not started), start the supervisor, and print the API URL;
                     --no-restart runs without a supervisor (a process that dies stays dead)
  down [--purge]     stop the supervisor and every process (SIGTERM, SIGKILL after 15 s); --purge
                     also removes the run's domains, datasets, database schema, Redis keys,
                     ZooKeeper nodes and state (never an object another run depends on)
  status             list the processes: running or not, restarts, and the supervisor
  restart <name>     stop and start one process (api, mainloop-<n>, background, agent-<host>)
  kill <name>        SIGKILL one process, as a crash would; the supervisor restarts it unless its
                     policy is 'restart: never' or up ran with --no-restart
  supervise          run the supervisor in the foreground (up starts it detached): restarts dead
                     processes with backoff, at most supervisor.restartsPerMinute a minute each

Options:
  --config FILE      the staging file (default staging/staging.yaml)
  -h, --help         show this help

Environment:
  CLOUDBED_ADMIN_ACCESS_KEY, CLOUDBED_ADMIN_SECRET_KEY
                     the admin key pair; when unset, 'up' generates one, prints the secret once
                     and keeps it in <state>/admin.json (mode 0600) for the next 'up'

State: <stateDir>/<prefix>/ (default .cloudbed/staging/<prefix>/ under the current directory)
holds <name>.pid, <name>.log (JSON lines), admin.json and supervisor.json (restart counts).
Exit codes: 0 ok, 1 a service is missing, a process failed or a purge left something (status:
something is not running), 2 bad input.
`;

const EXIT_BAD_INPUT = 2;

/** Default staging file. */
const DEFAULT_CONFIG = 'staging/staging.yaml';

const report: Report = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

export async function stagingCommand(argv: readonly string[]): Promise<number | undefined> {
  const { values, positionals } = parse('staging', argv, {
    config: { type: 'string' },
    purge: { type: 'boolean' },
    'no-restart': { type: 'boolean' },
  });
  const [sub, ...rest] = positionals;
  const subcommands = ['up', 'down', 'status', 'restart', 'kill', 'supervise'];
  if (sub === undefined)
    throw new UsageError(
      `cloudbed staging: missing subcommand; one of ${subcommands.join(', ')} (see cloudbed staging --help)`,
    );
  if (!subcommands.includes(sub))
    throw new UsageError(
      `cloudbed staging: unknown subcommand '${sub}'; one of ${subcommands.join(', ')}`,
    );
  if (values.purge === true && sub !== 'down')
    throw new UsageError('cloudbed staging: --purge applies only to down');
  if (values['no-restart'] === true && sub !== 'up')
    throw new UsageError('cloudbed staging: --no-restart applies only to up');
  const takesName = sub === 'restart' || sub === 'kill';
  if (takesName && rest.length !== 1)
    throw new UsageError(`cloudbed staging ${sub}: expected one process name`);
  if (!takesName && rest.length > 0)
    throw new UsageError(`cloudbed staging ${sub}: unexpected argument '${rest[0]}'`);

  const config = await stagingConfigOption(values.config);
  if (config === null) return EXIT_BAD_INPUT;
  try {
    switch (sub) {
      case 'up':
        return await up(config, report, { supervise: values['no-restart'] !== true });
      case 'down':
        return await down(config, values.purge === true, report);
      case 'status':
        return status(config, report);
      case 'supervise':
        return await superviseForeground(config);
      default: {
        const spec = specNamed(config, rest[0] as string);
        return await (sub === 'restart' ? restart : kill)(config, spec, report);
      }
    }
  } catch (error) {
    if (error instanceof StagingInputError)
      throw new UsageError(`cloudbed staging: ${error.message}`);
    throw error;
  }
}

/**
 * The staging file of `--config` (default {@link DEFAULT_CONFIG}), or null after printing why it is
 * not valid.
 */
export async function stagingConfigOption(file: string | undefined): Promise<StagingConfig | null> {
  try {
    return await loadStagingConfig(file ?? DEFAULT_CONFIG);
  } catch (error) {
    if (!(error instanceof StagingConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    return null;
  }
}

function specNamed(config: StagingConfig, name: string): ProcessSpec {
  const specs = processSpecs(config);
  const spec = specs.find((s) => s.name === name);
  if (spec === undefined)
    throw new UsageError(
      `cloudbed staging: no process '${name}'; processes: ${specs.map((s) => s.name).join(', ')}`,
    );
  return spec;
}
