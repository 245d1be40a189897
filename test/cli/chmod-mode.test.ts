/** `fs chmod` modes: every mode argument gives what coreutils' chmod(1) gives (umask 022). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { applyChmodMode } from '../../src/cli/chmod-mode.js';
import { requiresRoot, tempDir } from '../helpers/requires.js';

const who = fc.stringMatching(/^[ugoa]{0,2}$/);
const action = fc.oneof(
  fc.tuple(fc.constantFrom('+', '-', '='), fc.stringMatching(/^[rwxXst]{0,3}$/)).map(([o, p]) => o + p),
  fc.tuple(fc.constantFrom('+', '-', '='), fc.constantFrom('u', 'g', 'o')).map(([o, p]) => o + p),
);
const clause = fc.tuple(who, fc.array(action, { minLength: 1, maxLength: 2 })).map(([w, a]) => w + a.join(''));
const symbolic = fc.array(clause, { minLength: 1, maxLength: 3 }).map((c) => c.join(','));
const octal = fc.tuple(fc.integer({ min: 0, max: 0o7777 }), fc.constantFrom(3, 4, 5)).map(([v, w]) => v.toString(8).padStart(w, '0'));

test('fs chmod modes: symbolic and octal, on files and dirs, equal coreutils chmod under umask 022', (t) => {
  if (!requiresRoot(t)) return; // setuid/setgid on dirs behave as for root
  const dir = tempDir(t);
  const cases = fc.sample(fc.tuple(fc.oneof(symbolic, octal), fc.integer({ min: 0, max: 0o7777 }), fc.boolean()), { seed: 11, numRuns: 400 });
  cases.push(['u+x', 0o644, false], ['a=rX', 0o754, true], ['g=u', 0o640, false], ['755', 0o2700, true], ['00755', 0o2700, true], ['+w', 0o444, false], ['u=rwx,go=', 0o6777, false]);
  const script: string[] = ['umask 022'];
  cases.forEach(([spec, start, isDir], i) => {
    const p = join(dir, String(i));
    if (isDir) mkdirSync(p); else writeFileSync(p, '');
    chmodSync(p, start);
    script.push(`chmod -- '${spec}' '${p}' 2>/dev/null || echo "fail ${i}"`);
  });
  const r = spawnSync('sh', ['-c', script.join('\n')], { encoding: 'utf8' });
  const failed = new Set(r.stdout.split('\n').filter((l) => l.startsWith('fail ')).map((l) => Number(l.slice(5))));
  cases.forEach(([spec, start, isDir], i) => {
    const real = statSync(join(dir, String(i))).mode & 0o7777;
    if (failed.has(i)) {
      assert.throws(() => applyChmodMode(spec, start, isDir), /invalid mode/, `chmod refused '${spec}'`);
      return;
    }
    const ours = applyChmodMode(spec, start, isDir);
    assert.equal(ours.toString(8), real.toString(8), `chmod '${spec}' on ${isDir ? 'dir' : 'file'} ${start.toString(8)}`);
  });
  assert.throws(() => applyChmodMode('u+q', 0o644, false), /invalid mode: 'u\+q'/);
  assert.throws(() => applyChmodMode('', 0o644, false), /invalid mode/);
});
