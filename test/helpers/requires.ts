/**
 * Capability gates for tests. Locally a missing capability skips with a reason; under CI=true it
 * fails loudly, because a CI run that silently skips the kernel tests proves nothing.
 */
import type { TestContext } from 'node:test';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';

const inCI = process.env['CI'] === 'true';

function gate(t: TestContext, ok: boolean, what: string): boolean {
  if (ok) return true;
  if (inCI) throw new Error(`CI=true and this test needs ${what}, which this machine lacks`);
  t.skip(`needs ${what}`);
  return false;
}

export const isRoot = (): boolean => process.getuid?.() === 0;

let overlayOk: boolean | undefined;
/** A real two-lower overlay test mount works here. */
export function kernelOverlayWorks(): boolean {
  if (overlayOk !== undefined) return overlayOk;
  if (!isRoot()) return (overlayOk = false);
  const d = mkdtempSync(join(tmpdir(), 'ovl-probe-'));
  try {
    for (const s of ['l1', 'l2', 'u', 'w', 'm']) mkdirSync(join(d, s));
    const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${d}/l2:${d}/l1,upperdir=${d}/u,workdir=${d}/w`, `${d}/m`]);
    overlayOk = r.status === 0;
    if (overlayOk) spawnSync('umount', [`${d}/m`]);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
  return overlayOk;
}

export function requiresRoot(t: TestContext): boolean {
  return gate(t, isRoot(), 'root');
}

export function requiresOverlay(t: TestContext): boolean {
  return gate(t, kernelOverlayWorks(), 'root and a kernel overlay mount');
}

export function requiresCommand(t: TestContext, cmd: string): boolean {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`]);
  return gate(t, r.status === 0, `the command ${cmd}`);
}

/** A fresh temp dir, removed after the test (unmounting anything left under it first). */
export function tempDir(t: TestContext, prefix = 'ovl2-test-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => {
    spawnSync('sh', ['-c', `grep -o " ${d}[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l`]);
    rmSync(d, { recursive: true, force: true });
  });
  return d;
}

/** Path to ../shared (the read-only shared inputs), found from the repo root. */
export function sharedDir(): string {
  return process.env['OVERLAY2_SHARED'] ?? join(process.cwd(), '..', 'shared');
}
