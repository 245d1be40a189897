/** The CLI's renderings of Docker's units: CREATED as `docker images` prints it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createdAgo, humanDuration } from '../../src/cli/render.js';

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

test("humanDuration: go-units' HumanDuration wording at each boundary", () => {
  const cases: Array<[number, string]> = [
    [0, 'Less than a second'], [999, 'Less than a second'], [S, '1 second'], [59 * S, '59 seconds'],
    [60 * S, 'About a minute'], [119 * S, 'About a minute'], [2 * M, '2 minutes'], [59 * M + 59 * S, '59 minutes'],
    [60 * M, 'About an hour'], [89 * M, 'About an hour'], [91 * M, '2 hours'], [47 * H, '47 hours'],
    [48 * H, '2 days'], [13 * D, '13 days'], [14 * D, '2 weeks'], [59 * D, '8 weeks'], [60 * D, '2 months'],
    [729 * D, '24 months'], [730 * D, '2 years'], [3650 * D, '10 years'],
  ];
  assert.deepEqual(cases.map(([ms]) => humanDuration(ms)), cases.map(([, w]) => w));
});

test('createdAgo: "… ago" from the config time; N/A without one (or Go\'s zero time)', () => {
  const now = Date.parse('2026-12-04T10:00:00Z');
  assert.equal(createdAgo('2026-12-04T07:00:00.123456789Z', now), '3 hours ago');
  assert.equal(createdAgo(null, now), 'N/A');
  assert.equal(createdAgo('0001-01-01T00:00:00Z', now), 'N/A');
  assert.equal(createdAgo('not a time', now), 'N/A');
});
