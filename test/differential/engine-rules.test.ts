/**
 * Hand-written differential scenarios, one per overlay rule: each runs through the kernel overlay
 * mount and through OverlayEngine; every op's outcome/errno, the merged view and the upper dir must
 * be identical (see test/engine/harness.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requiresOverlay, tempDir } from '../helpers/requires.js';
import { differential } from '../engine/harness.js';
import { adversarial, scenarios } from '../engine/scenarios.js';

for (const [name, sc] of Object.entries({ ...scenarios, ...adversarial })) {
  test(`engine matches the kernel: ${name}`, async (t) => {
    if (!requiresOverlay(t)) return;
    const diffs = await differential(tempDir(t), sc);
    assert.deepEqual(diffs, []);
  });
}
