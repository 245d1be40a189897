/**
 * overlay2 storage options, validated with Docker's rules and messages: daemon options
 * (`overlay2.size=10G`) and per-layer create options (`size`). Sizes use go-units RAMInBytes
 * (binary multipliers, optional `b`/`ib`).
 */
import { OverlayError } from '../errors.js';

export interface DriverStorageOptions {
  /** Default per-container quota in bytes (0 = none). */
  quotaSize: number;
}

function invalid(reason: string, detail: string): OverlayError {
  return new OverlayError('EINVAL', 'storage-opt', { reason, detail });
}

const MULT: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };
const GO_FLOAT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * go-units RAMInBytes: a number (float allowed, ≥ 0), optional space, optional suffix
 * `b` | `k|m|g|t|p` + optional `b` or `ib`, case-insensitive, all binary.
 * @throws OverlayError EINVAL with Docker's text ("invalid size: '…'", "invalid suffix: '…'").
 */
export function ramInBytes(s: string): number {
  let sep = -1;
  for (let i = s.length - 1; i >= 0; i--) {
    if ('0123456789. '.includes(s[i] ?? '')) {
      sep = i;
      break;
    }
  }
  if (sep === -1) throw invalid('invalid-size', `invalid size: '${s}'`);
  const num = s[sep] !== ' ' ? s.slice(0, sep + 1) : s.slice(0, sep);
  let sfx = s.slice(sep + 1);
  if (!GO_FLOAT.test(num)) throw invalid('invalid-size', `strconv.ParseFloat: parsing ${JSON.stringify(num)}: invalid syntax`);
  let size = Number(num);
  if (size < 0) throw invalid('invalid-size', `invalid size: '${s}'`);
  if (sfx.length === 0) return Math.trunc(size) + 0;
  const bad = (): never => {
    throw invalid('invalid-suffix', `invalid suffix: '${sfx}'`);
  };
  if (sfx.length > 3) bad();
  sfx = sfx.toLowerCase();
  if (sfx[0] === 'b') {
    if (sfx.length > 1) bad();
    return Math.trunc(size) + 0;
  }
  const mul = MULT[sfx[0] ?? ''];
  if (mul === undefined) bad();
  size *= mul ?? 1;
  if (sfx.length === 2 && sfx[1] !== 'b') bad();
  if (sfx.length === 3 && sfx.slice(1) !== 'ib') bad();
  return Math.trunc(size) + 0;
}

/** Docker's ParseStorageOptKeyValue: split at the first `=`, trim both sides. */
export function parseStorageOptKeyValue(opt: string): [string, string] {
  const i = opt.indexOf('=');
  if (i < 0) throw invalid('storage-opt-syntax', `unable to parse storage-opt key/value: ${opt}`);
  return [opt.slice(0, i).trim(), opt.slice(i + 1).trim()];
}

/** Daemon-level `overlay2.*` options. */
export function parseDriverOptions(options: readonly string[] = []): DriverStorageOptions {
  const out: DriverStorageOptions = { quotaSize: 0 };
  for (const opt of options) {
    const [k, v] = parseStorageOptKeyValue(opt);
    const key = k.toLowerCase();
    if (key === 'overlay2.size') out.quotaSize = ramInBytes(v);
    else throw invalid('unknown-storage-opt', `overlay2: unknown option ${key}`);
  }
  return out;
}

/** Per-layer options (`--storage-opt`), keys lower-cased; returns the size in bytes (0 = none). */
export function parseLayerStorageOpt(opt: Record<string, string> | undefined): number {
  let size = 0;
  for (const [k, v] of Object.entries(opt ?? {})) {
    const key = k.toLowerCase();
    if (key === 'size') size = ramInBytes(v);
    else throw invalid('unknown-storage-opt', `Unknown option ${key}`);
  }
  return size;
}
