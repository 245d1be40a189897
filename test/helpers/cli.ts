/** Running the CLI as a user does: `node bin/overlay2.js --root ROOT …`, one process per command. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

export const BIN = join(process.cwd(), 'bin', 'overlay2.js');
export const EXAMPLE = join(process.cwd(), 'examples', 'example-image.tar');

export interface CliRun {
  status: number;
  stdout: string;
  stderr: string;
}

export function cli(root: string, args: string[], input?: string): CliRun {
  const r = spawnSync(process.execPath, [BIN, '--root', root, ...args], { input, encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Stdout of a command that must succeed. */
export function ok(root: string, args: string[], input?: string): string {
  const r = cli(root, args, input);
  assert.equal(r.status, 0, `overlay2 ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}
