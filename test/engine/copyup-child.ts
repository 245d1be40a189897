/**
 * Child process for the copy-up data-path test: appends one byte to a lower file through an
 * OverlayEngine (a full data copy-up), so the parent can trace its syscalls.
 * argv: lower upper work path
 */
import { OverlayEngine } from '../../src/engine/index.js';

const [lower, upper, work, path] = process.argv.slice(2) as [string, string, string, string];
const e = new OverlayEngine({ lowers: [lower], upper, work });
await e.appendFile(path, '!');
