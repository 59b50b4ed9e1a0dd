// Goal: the cloud does what its users asked, as a reference model of desired state says. After
// every API call the API's view of the resources it touched (desired state, size, attachment)
// equals the model's, and a settled cloud accepts exactly the calls the model deems valid; after
// settling, the actual cloud equals the model: each live VM in the asked state on its one host,
// volumes and snapshots on their node with the right size and attachment, nothing deleted left
// anywhere, and no resource whose last command failed.
// Method: fc.commands over src/fuzz/model-based.ts: sequences of up to 16 calls (creates, actions,
// deletes, snapshots, restores, clones, attaches, grows, waits and settles) run inside one
// simulation per case, with the safety checkers after every step. Once on a healthy bus, once on
// a lossy one (drops, duplicates, delays): commands are then re-sent and delivered twice, which
// proves the agents' commands idempotent and the orphans collected. A failure prints the shrunk
// command listing and fast-check's seed and path (replay: checkModel({ seed, path, runs: 1 })).
// Budget: 120 + 120 cases at about 60 ms each (~15 s on two cores).
import { describe, expect, it } from 'vitest';
import { checkModel, LOSSY_BUS, type ModelReport } from '../../src/fuzz/model-based.ts';

function explain(report: ModelReport): string | undefined {
  const failure = report.failure;
  if (failure === undefined) return undefined;
  return `${failure.reason}\nfast-check seed=${failure.seed} path="${failure.path}" (shrunk in ${report.shrinkRuns} runs)\n  ${failure.listing.join('\n  ')}`;
}

describe('the cloud against a reference model of desired state', () => {
  it('matches the model on a healthy bus', async () => {
    const report = await checkModel({ runs: 120, seed: 1 });
    expect(explain(report)).toBeUndefined();
    expect(report.runs).toBe(120);
  });

  it('matches the model on a lossy bus (re-sent and duplicated commands)', async () => {
    const report = await checkModel({ runs: 120, seed: 2, bus: LOSSY_BUS });
    expect(explain(report)).toBeUndefined();
    expect(report.runs).toBe(120);
  });
});
