// Test support: the error a scenario text is refused with, and the check that it names the file
// `f.yaml`, the line, the field and the problem. Shared by the scenario validation tests.
import { expect } from 'vitest';
import { parseScenario, ScenarioError } from '../../src/sim/scenario.ts';

/** The ScenarioError `text` (as file `f.yaml`) is refused with; fails when it parses. */
export function scenarioError(text: string): ScenarioError {
  try {
    parseScenario(text, 'f.yaml');
  } catch (e) {
    if (e instanceof ScenarioError) return e;
    throw e;
  }
  throw new Error('expected a ScenarioError');
}

/** `text` is refused at `field` on `line` with a problem matching `problem`, in one line. */
export function expectRefused(text: string, field: string, line: number, problem: RegExp): void {
  const e = scenarioError(text);
  expect(e.problem).toMatch(problem);
  expect(e.field).toBe(field);
  expect(e.line).toBe(line);
  expect(e.message.startsWith(`f.yaml:${line}: ${field}: `)).toBe(true);
}
