/**
 * Child process for the unprivileged differential test: runs a list of ops as the (non-root) uid
 * it was started with, against a kernel mount or through an OverlayEngine, and prints the results.
 * Input: argv[2] = JSON file {kind, mount?, lowers?, upper?, work?, ops}.
 */
import { readFileSync } from 'node:fs';
import { OverlayEngine } from '../../src/engine/index.js';
import { codeOf, engineOp, kernelOp, type Op } from './harness.js';

interface Job {
  kind: 'kernel' | 'engine';
  mount?: string;
  lowers?: string[];
  upper?: string;
  work?: string;
  ops: Op[];
}

const job = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as Job;
const results: string[] = [];
const engine = job.kind === 'engine' ? new OverlayEngine({ lowers: job.lowers!, upper: job.upper!, work: job.work!, userxattr: true }) : null;
const fds = new Map<number, number>();
const hs = new Map();
for (const o of job.ops) {
  try {
    results.push(engine ? await engineOp(engine, o, hs) : kernelOp(job.mount!, o, fds));
  } catch (e) {
    results.push(`E:${codeOf(e)}`);
  }
}
process.stdout.write(JSON.stringify(results));
