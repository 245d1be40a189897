/**
 * The README's CLI example, run as written (with `npx overlay2` as `node bin/overlay2.js`, and
 * /tmp paths moved into a temp dir): every command must succeed, and a command whose line ends in
 * a `# …` comment must print what the comment says (comma-separated lines).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { requiresOverlay, tempDir } from '../helpers/requires.js';

const BIN = join(process.cwd(), 'bin', 'overlay2.js');

/** The shell lines of the README's "Example, in the repository" block. */
function readmeExample(): string[] {
  const readme = readFileSync(join(process.cwd(), 'README.md'), 'utf8');
  const m = /Example, in the repository:\s*```sh\n([\s\S]*?)```/.exec(readme);
  assert.ok(m?.[1] !== undefined, 'README.md has an "Example, in the repository:" sh block');
  return m[1].split('\n').filter((l) => l.trim() !== '');
}

test('the README CLI example runs as written and prints what its comments say', (t) => {
  if (!requiresOverlay(t)) return;
  const dir = tempDir(t);
  const lines = readmeExample();
  assert.ok(lines.length >= 5, lines.join('\n'));
  for (const line of lines) {
    const [cmd = '', expected] = line.split(/\s+#\s+/, 2);
    // /tmp first, so a checkout under /tmp keeps its own bin path.
    const sh = cmd.replaceAll('/tmp/', `${dir}/`).replaceAll('npx overlay2', `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)}`);
    const r = spawnSync('bash', ['-c', sh], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${line}\nexit ${String(r.status)}: ${r.stderr}`);
    if (expected !== undefined) {
      assert.deepEqual(r.stdout.trim().split('\n'), expected.split(/,\s*/), line);
    }
  }
});
