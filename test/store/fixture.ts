/** Test helpers for the store: a driver in a temp dir, and a small tar-based stand-in for applyLayer. */
import type { TestContext } from 'node:test';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Overlay2Driver, type ArchiveOps, type DriverOptions } from '../../src/store/driver.js';
import type { ApplyLayerResult } from '../../src/archive/types.js';
import { tempDir } from '../helpers/requires.js';

export interface TestDriver {
  root: string;
  home: string;
  driver: Overlay2Driver;
}

export async function newDriver(t: TestContext, opts: DriverOptions = {}, home?: string): Promise<TestDriver> {
  const root = tempDir(t);
  const h = home ?? join(root, 'overlay2');
  const driver = await Overlay2Driver.init(h, opts);
  t.after(() => driver.cleanup());
  return { root, home: h, driver };
}

/** Extract a plain tar with GNU tar (no whiteout conversion): enough to exercise the store. */
export const tarApply: ArchiveOps['applyLayer'] = async (tarFile, destDir) => {
  execFileSync('tar', ['-xf', tarFile, '-C', destDir, '--same-owner', '--numeric-owner']);
  const buf = readFileSync(tarFile);
  const entries = execFileSync('tar', ['-tf', tarFile]).toString().split('\n').filter((l) => l !== '').length;
  const r: ApplyLayerResult = { diffId: `sha256:${createHash('sha256').update(buf).digest('hex')}`, compression: 'none', tarSize: buf.length, size: 0, entries };
  return r;
};

/** A tar of the given files (path → content), built with GNU tar. */
export function makeTar(dir: string, name: string, files: Record<string, string>): string {
  const src = join(dir, `${name}.src`);
  mkdirSync(src, { recursive: true });
  for (const [p, c] of Object.entries(files)) {
    mkdirSync(dirname(join(src, p)), { recursive: true });
    writeFileSync(join(src, p), c);
  }
  const out = join(dir, `${name}.tar`);
  execFileSync('tar', ['-cf', out, '-C', src, '.']);
  return out;
}

export const modeOf = (p: string): number => statSync(p).mode & 0o7777;
