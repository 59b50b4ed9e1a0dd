/**
 * Where a staging main loop records its ZooKeeper session, so a chaos run can end that session on
 * the server (the `session-expire` fault, src/chaos/real-faults.ts): every session it opens writes
 * its id and password to `<state>/<name>.lock-session` (owner-only), replacing the last one. The
 * password lets anyone who reads it take over the session, which is why the file is the
 * deployment's own and nobody else's to read.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  sessionCredentials,
  type ZooKeeperSessionCredentials,
} from '../adapters/zookeeper-locks.ts';
import type { Locks } from '../ports/locks.ts';

/** The file process `name` records its current lock session in. */
export function lockSessionFile(stateDir: string, name: string): string {
  return join(stateDir, `${name}.lock-session`);
}

/** `inner`, with every session it opens recorded in `file`. */
export function recordingSessions(inner: Locks, file: string): Locks {
  return {
    openSession: async (options) => {
      const session = await inner.openSession(options);
      const credentials = sessionCredentials(session);
      if (credentials !== null) {
        // Whole or not at all: a reader never sees half a file.
        writeFileSync(`${file}.tmp`, `${JSON.stringify(credentials)}\n`, { mode: 0o600 });
        renameSync(`${file}.tmp`, file);
      }
      return session;
    },
    close: () => inner.close(),
  };
}

/** The session recorded in `file`, or null when there is none (or it cannot be read). */
export function recordedSession(file: string): ZooKeeperSessionCredentials | null {
  if (!existsSync(file)) return null;
  try {
    const data = JSON.parse(readFileSync(file, 'utf8')) as Partial<ZooKeeperSessionCredentials>;
    return typeof data.id === 'string' && typeof data.password === 'string'
      ? { id: data.id, password: data.password }
      : null;
  } catch {
    return null;
  }
}
