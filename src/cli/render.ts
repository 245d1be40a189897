/** Output for the CLI: a human table/lines or `--json`, and one-line errors. */
import { OverlayError, codeOf } from '../errors.js';

export interface Output {
  json: boolean;
  out: (s: string) => void;
  err: (s: string) => void;
}

export function printJson(o: Output, value: unknown): void {
  o.out(JSON.stringify(value, null, 2) + '\n');
}

/** A left-aligned table with Docker-style upper-case headers and 3-space gaps. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('   ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/** Docker's `units.HumanSize` (decimal, 3 significant digits): "6.71MB", "0B". */
export function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(3))}${units[i]}`;
}

/**
 * How long ago, in the words of Docker's `units.HumanDuration` (as `docker images` prints CREATED):
 * "5 seconds", "About a minute", "3 hours", "2 weeks", "4 years".
 */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(seconds / 60);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3_600_000);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(Math.floor(ms / 3_600_000) / 24 / 365)} years`;
}

/** `docker images`' CREATED: "3 hours ago", or "N/A" without a creation time. */
export function createdAgo(created: string | null, now = Date.now()): string {
  const t = created === null ? NaN : Date.parse(created);
  return Number.isNaN(t) || t <= 0 ? 'N/A' : `${humanDuration(now - t)} ago`;
}

export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

/** Map an error to an exit status: 1 for operational failures, 2 for usage errors. */
export function exitCodeFor(e: unknown): number {
  const c = codeOf(e);
  return c === 'EUSAGE' ? 2 : 1;
}

/** One line: what failed and why. */
export function errorLine(e: unknown): string {
  if (e instanceof OverlayError) return `overlay2: ${e.message}`;
  if (e instanceof Error) return `overlay2: ${e.message}`;
  return `overlay2: ${String(e)}`;
}

/** An error as data for `--json`: code, operation, path and reason when known, and the message. */
export function errorJson(e: unknown): Record<string, unknown> {
  if (e instanceof OverlayError) {
    const o: Record<string, unknown> = { code: e.code, op: e.op, message: e.message };
    if (e.path !== undefined) o['path'] = e.path;
    if (e.dest !== undefined) o['dest'] = e.dest;
    if (e.layer !== undefined) o['layer'] = e.layer;
    if (e.reason !== undefined) o['reason'] = e.reason;
    return o;
  }
  const code = codeOf(e);
  return { ...(code !== undefined ? { code } : {}), message: e instanceof Error ? e.message : String(e) };
}
