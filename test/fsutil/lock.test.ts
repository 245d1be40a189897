/**
 * The data-root lock across processes: exclusive holders exclude everyone, shared holders share,
 * a killed holder's lock is released by the kernel, and concurrent CLI loads of one archive
 * serialize into one copy of each layer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { acquireRootLock, withRootLock } from '../../src/fsutil/lock.js';
import { requiresOverlay, tempDir } from '../helpers/requires.js';

const LOCK_MODULE = join(process.cwd(), 'dist', 'src', 'fsutil', 'lock.js');

/** A child process that takes the lock, prints "held", and keeps it until killed. */
function holder(root: string, mode: 'shared' | 'exclusive'): Promise<{ kill: () => Promise<void> }> {
  const code = `import(${JSON.stringify(LOCK_MODULE)}).then(async (m) => { await m.acquireRootLock(${JSON.stringify(root)}, ${JSON.stringify(mode)}); process.stdout.write('held\\n'); setInterval(() => {}, 1000); });`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('held')) {
        resolve({ kill: () => new Promise((r) => { child.on('exit', () => r()); child.kill('SIGKILL'); }) });
      }
    });
    child.on('error', reject);
  });
}

test('an exclusive holder in another process blocks us; its death releases the lock', async (t) => {
  const root = tempDir(t);
  const h = await holder(root, 'exclusive');
  await assert.rejects(acquireRootLock(root, 'shared', { timeoutMs: 200 }), (e: unknown) => (e as { code?: string }).code === 'EBUSY');
  await h.kill();
  const release = await acquireRootLock(root, 'exclusive', { timeoutMs: 2000 });
  release();
});

test('shared holders share; an exclusive request waits for them', async (t) => {
  const root = tempDir(t);
  const h = await holder(root, 'shared');
  const release = await acquireRootLock(root, 'shared', { timeoutMs: 1000 });
  release();
  let waited = false;
  await assert.rejects(acquireRootLock(root, 'exclusive', { timeoutMs: 200, onWait: () => (waited = true) }), (e: unknown) => (e as { code?: string }).code === 'EBUSY');
  assert.ok(waited, 'onWait was called');
  await h.kill();
});

test('the lock is re-entrant within a process, and refuses a shared → exclusive upgrade', async (t) => {
  const root = tempDir(t);
  await withRootLock(root, 'exclusive', async () => {
    await withRootLock(root, 'shared', async () => undefined, { timeoutMs: 100 });
    await withRootLock(root, 'exclusive', async () => undefined, { timeoutMs: 100 });
  });
  await withRootLock(root, 'shared', async () => {
    await assert.rejects(withRootLock(root, 'exclusive', async () => undefined), (e: unknown) => (e as { code?: string }).code === 'EDEADLK');
  });
});

test('two concurrent `overlay2 load`s of one archive store each layer once', async (t) => {
  if (!requiresOverlay(t)) return;
  const root = join(tempDir(t), 'root');
  const bin = join(process.cwd(), 'bin', 'overlay2.js');
  const example = join(process.cwd(), 'examples', 'example-image.tar');
  const run = (): Promise<number> =>
    new Promise((resolve) => {
      const c = spawn(process.execPath, [bin, '--root', root, 'load', example], { stdio: 'ignore' });
      c.on('exit', (code) => resolve(code ?? -1));
    });
  const codes = await Promise.all([run(), run(), run()]);
  assert.deepEqual(codes, [0, 0, 0]);
  const layers = readdirSync(join(root, 'overlay2')).filter((n) => n !== 'l');
  assert.equal(layers.length, 3, `layer dirs: ${layers.join(' ')}`);
  const listed = spawnSync(process.execPath, [bin, '--root', root, '--json', 'layers'], { encoding: 'utf8' });
  assert.equal((JSON.parse(listed.stdout) as unknown[]).length, 3);
});

test('library users take the lock from the package entry (`import { withRootLock } from \'overlay2\'`); a CLI command waits for it', async (t) => {
  if (!requiresOverlay(t)) return;
  const root = join(tempDir(t), 'root');
  const bin = join(process.cwd(), 'bin', 'overlay2.js');
  // The package's own name: resolved through package.json "exports", as a library user's import is.
  const pkg = 'overlay2';
  const lib = (await import(pkg)) as { withRootLock?: unknown };
  assert.equal(lib.withRootLock, withRootLock, 'the package exports the lock the CLI takes');
  let stderr = '';
  let code: number | null | undefined;
  const exited = await withRootLock(root, 'exclusive', async () => {
    const child = spawn(process.execPath, [bin, '--root', root, 'images'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const done = new Promise<void>((resolve) => child.on('exit', (c) => { code = c; resolve(); }));
    await new Promise<void>((resolve) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes('waiting for another overlay2 process')) resolve();
      });
    });
    assert.equal(code, undefined, 'the command waits while the library holds the lock');
    return { done }; // not the promise itself: awaiting it under the lock would deadlock
  });
  await exited.done;
  assert.equal(code, 0, stderr);
});
