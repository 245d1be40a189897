/**
 * Shared fixture for the hostile-tar tests: a temp root holding the layer dir `dest`, a sibling
 * `outside` dir with a victim file, and a snapshot of everything outside `dest` (plus a few host
 * paths) so a test can prove that nothing outside the destination was created or changed.
 */
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { applyLayer } from '../../src/archive/apply-layer.js';
import { OverlayError } from '../../src/errors.js';
import { tempDir } from '../helpers/requires.js';
import { tarOf, type TarEntrySpec } from '../helpers/tar-builder.js';

export interface Sandbox {
  root: string;
  dest: string;
  outside: string;
  /** Listing (path, type, size, mtime, nlink) of everything under root except dest. */
  snapshot(): string[];
}

const HOST_PATHS = ['/etc/passwd', '/tmp/outside', '/tmp/moo', '/tmp/pwned', '/dev/null'];

export function sandbox(t: TestContext): Sandbox {
  const root = tempDir(t, 'ovl2-sec-');
  const dest = join(root, 'dest');
  const outside = join(root, 'outside');
  mkdirSync(dest);
  mkdirSync(outside);
  writeFileSync(join(outside, 'victim'), 'precious');
  const snapshot = (): string[] => {
    const out: string[] = [];
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir).sort()) {
        const p = join(dir, name);
        if (p === dest) continue;
        const st = lstatSync(p);
        out.push(`${p} ${st.mode.toString(8)} ${st.size} ${st.mtimeMs} ${st.nlink}`);
        if (st.isDirectory()) walk(p);
      }
    };
    walk(root);
    for (const h of HOST_PATHS) {
      if (!existsSync(h)) {
        out.push(`${h} absent`);
        continue;
      }
      const st = lstatSync(h);
      out.push(`${h} ${st.mode.toString(8)} ${st.size} ${st.mtimeMs} ${st.nlink} ${st.rdev}`);
    }
    return out;
  };
  return { root, dest, outside, snapshot };
}

/** Apply `entries` into `sb.dest`; expect OverlayError(code, reason); prove nothing changed outside. */
export async function expectRefusal(sb: Sandbox, entries: TarEntrySpec[], code: string, reason: string, name = 'layer.tar'): Promise<OverlayError> {
  const tar = join(sb.root, name);
  writeFileSync(tar, tarOf(entries));
  const before = sb.snapshot().filter((l) => !l.startsWith(`${tar} `));
  let err: unknown;
  try {
    await applyLayer(tar, sb.dest);
  } catch (e) {
    err = e;
  }
  const after = sb.snapshot().filter((l) => !l.startsWith(`${tar} `));
  assert.deepEqual(after, before, 'nothing outside the destination changed');
  assert.ok(err instanceof OverlayError, `expected a refusal, got ${err === undefined ? 'success' : String(err)}`);
  assert.equal(err.code, code, err.message);
  assert.equal(err.reason, reason, err.message);
  return err;
}

/** Apply `entries` expecting success; prove nothing changed outside. */
export async function expectContained(sb: Sandbox, entries: TarEntrySpec[], name = 'layer.tar'): Promise<void> {
  const tar = join(sb.root, name);
  writeFileSync(tar, tarOf(entries));
  const before = sb.snapshot().filter((l) => !l.startsWith(`${tar} `));
  await applyLayer(tar, sb.dest);
  assert.deepEqual(sb.snapshot().filter((l) => !l.startsWith(`${tar} `)), before, 'nothing outside the destination changed');
}
