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
