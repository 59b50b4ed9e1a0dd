// Goal: the supervisor's restart policy restarts a process that died — and only one that died, not
// one stopped on purpose — after a backoff that doubles while it keeps dying and starts over once
// it stays up; gives up after the per-minute bound and leaves it down until someone starts it
// again; never restarts a process whose policy is `never`; and carries restart counts over from
// an earlier supervisor.
// Method: a RestartTracker fed observations at chosen times; no processes, no clock.
import { describe, expect, it } from 'vitest';
import {
  BACKOFF_MS_MAX,
  RestartTracker,
  STABLE_MS,
  type RestartDecision,
} from '../../../src/staging/restart-policy.ts';

const LIMITS = { restartsPerMinuteMax: 3, backoffMs: 1_000 };

/** Observes `name` dead from `fromMs` on, every 100 ms, until a restart; returns its time. */
function restartWhenDue(t: RestartTracker, name: string, fromMs: number): number {
  for (let now = fromMs; now < fromMs + 120_000; now += 100) {
    const d = t.observe(name, 'dead', 'always', now);
    if (d.kind === 'restart') {
      t.restarted(name, now);
      return now;
    }
    expect(d.kind).toBe('wait');
  }
  throw new Error('never restarted');
}

describe('RestartTracker', () => {
  it('restarts a dead process after a doubling backoff, then gives up past the bound', () => {
    const t = new RestartTracker(LIMITS);
    expect(t.observe('api', 'running', 'always', 0)).toEqual({ kind: 'none' });
    const first = restartWhenDue(t, 'api', 1_000);
    expect(first - 1_000).toBe(1_000);
    const second = restartWhenDue(t, 'api', first + 500);
    expect(second - (first + 500)).toBe(2_000);
    const third = restartWhenDue(t, 'api', second + 500);
    expect(third - (second + 500)).toBe(4_000);
    // A fourth death within the minute: the bound is reached.
    const given: RestartDecision = t.observe('api', 'dead', 'always', third + 500);
    expect(given).toEqual({ kind: 'give-up', restartsInWindow: 3 });
    expect(t.observe('api', 'dead', 'always', third + 120_000)).toEqual({ kind: 'none' });
    expect(t.records()['api']).toEqual({ restarts: 3, lastRestartAtMs: third, gaveUp: true });
    // Started again by hand: looked after again.
    expect(t.observe('api', 'running', 'always', third + 130_000)).toEqual({ kind: 'none' });
    expect(t.records()['api']?.gaveUp).toBe(false);
  });

  it('leaves alone a process stopped on purpose, one whose policy is never, and a death that healed', () => {
    const t = new RestartTracker(LIMITS);
    expect(t.observe('mainloop-1', 'stopped', 'always', 0)).toEqual({ kind: 'none' });
    for (let now = 0; now < 100_000; now += 1_000)
      expect(t.observe('mainloop-2', 'dead', 'never', now)).toEqual({ kind: 'none' });
    // Dead, then running again before the backoff ran out (someone else started it): nothing due.
    expect(t.observe('background', 'dead', 'always', 0).kind).toBe('wait');
    expect(t.observe('background', 'running', 'always', 500)).toEqual({ kind: 'none' });
    expect(t.observe('background', 'dead', 'always', 600)).toEqual({
      kind: 'wait',
      untilMs: 1_600,
    });
    expect(t.records()['mainloop-2']).toEqual({
      restarts: 0,
      lastRestartAtMs: null,
      gaveUp: false,
    });
  });

  it('starts the backoff over once a restarted process stayed up, and caps it', () => {
    const t = new RestartTracker({ restartsPerMinuteMax: 100, backoffMs: 1_000 });
    let now = restartWhenDue(t, 'agent-c1', 0);
    now = restartWhenDue(t, 'agent-c1', now + 10);
    t.observe('agent-c1', 'running', 'always', now + STABLE_MS);
    expect(t.observe('agent-c1', 'dead', 'always', now + STABLE_MS + 1)).toEqual({
      kind: 'wait',
      untilMs: now + STABLE_MS + 1 + 1_000,
    });
    expect(t.backoffMs(40)).toBe(BACKOFF_MS_MAX);
  });

  it('keeps the counts of an earlier supervisor', () => {
    const t = new RestartTracker(LIMITS, {
      api: { restarts: 7, lastRestartAtMs: 5, gaveUp: false },
    });
    restartWhenDue(t, 'api', 10_000);
    expect(t.records()['api']?.restarts).toBe(8);
  });
});
