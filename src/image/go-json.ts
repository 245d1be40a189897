/**
 * JSON exactly as Go's encoding/json (the Go of Docker 20.10) writes it, for the files whose bytes
 * are hashed or compared: `docker save`'s legacy `<v1-id>/json` files, the v1 ids derived from them
 * (moby `v1.CreateID`), and image configs written by commit.
 *
 * Go escapes `<`, `>`, `&`, U+2028 and U+2029 as `\u00XX`, writes control characters other than
 * \n \r \t as `\u00XX`, sorts map keys bytewise and emits struct fields in declaration order.
 * Parsed JSON objects from Docker-written files keep their key order (JS keeps insertion order
 * for non-index keys), so "raw" objects re-marshal to the same text.
 */
import type { JsonValue, JsonObject } from './json-types.js';
import { sha256Digest } from './digest.js';

export function goString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || ch === '<' || ch === '>' || ch === '&' || c === 0x2028 || c === 0x2029) {
      out += `\\u${c.toString(16).padStart(4, '0')}`;
    } else if (c >= 0xd800 && c <= 0xdfff) out += '\ufffd'; // lone surrogate: Go writes U+FFFD
    else out += ch;
  }
  return `${out}"`;
}

const byteCompare = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** Marshal a JSON value keeping object key order (a Go struct / json.RawMessage re-encoded). */
export function goMarshal(v: JsonValue | undefined): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') return goString(v);
  if (typeof v === 'number') return Number.isFinite(v) ? JSON.stringify(v) : 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (Array.isArray(v)) return `[${v.map((x) => goMarshal(x)).join(',')}]`;
  return `{${Object.entries(v).map(([k, x]) => `${goString(k)}:${goMarshal(x)}`).join(',')}}`;
}

/** Marshal an object as a Go map: keys sorted bytewise. Values are marshalled in their own order. */
export function goMarshalMap(o: JsonObject): string {
  const keys = Object.keys(o).sort(byteCompare);
  return `{${keys.map((k) => `${goString(k)}:${goMarshal(o[k])}`).join(',')}}`;
}

/** Ordered list of [key, already-marshalled value] → a JSON object text. */
export function goObject(fields: ReadonlyArray<readonly [string, string]>): string {
  return `{${fields.map(([k, v]) => `${goString(k)}:${v}`).join(',')}}`;
}

/**
 * Go's time.Time MarshalJSON (RFC 3339 with nanoseconds, trailing zeros trimmed, `Z` for a zero
 * offset) applied to a timestamp string as found in an image config.
 */
export function goTime(s: string): string {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/i.exec(s);
  if (m === null) return goString(s);
  let frac = (m[2] ?? '').slice(0, 9).replace(/0+$/, '');
  frac = frac === '' ? '' : `.${frac}`;
  const off = m[3] === undefined || /^(z|[+-]00:00)$/i.test(m[3]) ? 'Z' : m[3];
  return goString(`${m[1]?.toUpperCase()}${frac}${off}`);
}

/** Seconds since the epoch of a config timestamp (for tar header mtimes), 0 if unparsable. */
export function timeSeconds(s: string | undefined): number {
  if (s === undefined) return 0;
  const ms = Date.parse(s);
  return Number.isNaN(ms) ? 0 : Math.floor(ms / 1000);
}

// ---- container.Config (api/types/container/config.go, Docker 20.10), field order and omitempty ----

type Kind = 'string' | 'bool' | 'strings' | 'strslice' | 'set' | 'smap' | 'health' | 'intptr';
const CONTAINER_CONFIG_FIELDS: ReadonlyArray<readonly [string, Kind, boolean]> = [
  ['Hostname', 'string', false], ['Domainname', 'string', false], ['User', 'string', false],
  ['AttachStdin', 'bool', false], ['AttachStdout', 'bool', false], ['AttachStderr', 'bool', false],
  ['ExposedPorts', 'set', true], ['Tty', 'bool', false], ['OpenStdin', 'bool', false], ['StdinOnce', 'bool', false],
  ['Env', 'strings', false], ['Cmd', 'strslice', false], ['Healthcheck', 'health', true], ['ArgsEscaped', 'bool', true],
  ['Image', 'string', false], ['Volumes', 'set', false], ['WorkingDir', 'string', false], ['Entrypoint', 'strslice', false],
  ['NetworkDisabled', 'bool', true], ['MacAddress', 'string', true], ['OnBuild', 'strings', false], ['Labels', 'smap', false],
  ['StopSignal', 'string', true], ['StopTimeout', 'intptr', true], ['Shell', 'strslice', true],
];

/** Go's json field matching is case-insensitive; exact match wins. */
function field(o: JsonObject, name: string): JsonValue | undefined {
  if (name in o) return o[name];
  const lower = name.toLowerCase();
  for (const k of Object.keys(o)) if (k.toLowerCase() === lower) return o[k];
  return undefined;
}

const isObject = (v: JsonValue | undefined): v is JsonObject => v !== null && typeof v === 'object' && !Array.isArray(v);

function marshalKind(kind: Kind, v: JsonValue | undefined, omitEmpty: boolean): string | undefined {
  switch (kind) {
    case 'string': {
      const s = typeof v === 'string' ? v : '';
      return omitEmpty && s === '' ? undefined : goString(s);
    }
    case 'bool': {
      const b = v === true;
      return omitEmpty && !b ? undefined : b ? 'true' : 'false';
    }
    case 'strings':
    case 'strslice': {
      let arr: JsonValue[] | null = null;
      if (Array.isArray(v)) arr = v;
      else if (kind === 'strslice' && typeof v === 'string') arr = [v];
      if (omitEmpty && (arr === null || arr.length === 0)) return undefined;
      return arr === null ? 'null' : `[${arr.map((x) => goString(String(x))).join(',')}]`;
    }
    case 'set':
    case 'smap': {
      if (!isObject(v)) return omitEmpty ? undefined : 'null';
      if (omitEmpty && Object.keys(v).length === 0) return undefined;
      const keys = Object.keys(v).sort(byteCompare);
      return `{${keys.map((k) => `${goString(k)}:${kind === 'set' ? '{}' : goString(String(v[k] ?? ''))}`).join(',')}}`;
    }
    case 'health': {
      if (!isObject(v)) return undefined;
      const parts: Array<[string, string]> = [];
      const test = field(v, 'Test');
      if (Array.isArray(test) && test.length > 0) parts.push(['Test', `[${test.map((x) => goString(String(x))).join(',')}]`]);
      for (const k of ['Interval', 'Timeout', 'StartPeriod', 'Retries']) {
        const n = field(v, k);
        if (typeof n === 'number' && n !== 0) parts.push([k, JSON.stringify(n)]);
      }
      return goObject(parts);
    }
    case 'intptr':
      return typeof v === 'number' ? JSON.stringify(Math.trunc(v)) : undefined;
  }
}

/** A container.Config as Go marshals it after unmarshalling `v` (null/absent → the zero Config). */
export function goContainerConfig(v: JsonValue | undefined): string {
  const o = isObject(v) ? v : {};
  const parts: Array<[string, string]> = [];
  for (const [name, kind, omit] of CONTAINER_CONFIG_FIELDS) {
    const s = marshalKind(kind, field(o, name), omit);
    if (s !== undefined) parts.push([name, s]);
  }
  return goObject(parts);
}

// ---- image.V1Image and v1.CreateID ----

/** Fields of moby's image.V1Image, marshalled, in struct order (id and parent excluded). */
export function v1ImageFields(config: JsonObject): Array<[string, string]> {
  const str = (k: string): string | undefined => {
    const v = field(config, k);
    return typeof v === 'string' && v !== '' ? goString(v) : undefined;
  };
  const out: Array<[string, string]> = [];
  const push = (k: string, v: string | undefined): void => { if (v !== undefined) out.push([k, v]); };
  push('comment', str('comment'));
  const created = field(config, 'created');
  push('created', typeof created === 'string' ? goTime(created) : '"0001-01-01T00:00:00Z"');
  push('container', str('container'));
  push('container_config', goContainerConfig(field(config, 'container_config')));
  push('docker_version', str('docker_version'));
  push('author', str('author'));
  const cfg = field(config, 'config');
  if (isObject(cfg)) push('config', goContainerConfig(cfg));
  push('architecture', str('architecture'));
  push('variant', str('variant'));
  push('os', str('os'));
  const size = field(config, 'Size');
  if (typeof size === 'number' && size !== 0) push('Size', JSON.stringify(size));
  return out;
}

/** The V1Image of a non-top layer in `docker save`: only `created` = Unix 0 (the daemon ran in UTC). */
export function v1EmptyFields(): Array<[string, string]> {
  return [['created', '"1970-01-01T00:00:00Z"'], ['container_config', goContainerConfig(undefined)]];
}

/**
 * moby `v1.CreateID`: sha256 of the V1Image JSON (without id) as a Go map, plus `layer_id` (the
 * layer's chainID) and `parent` (the parent v1 id digest, if any). Returns the hex id.
 */
export function createV1Id(fields: ReadonlyArray<readonly [string, string]>, chainId: string, parent: string | null): string {
  const entries = new Map<string, string>(fields.map(([k, v]) => [k, v]));
  entries.set('layer_id', goString(chainId));
  if (parent !== null) entries.set('parent', goString(`sha256:${parent}`));
  const keys = [...entries.keys()].sort(byteCompare);
  return sha256Digest(`{${keys.map((k) => `${goString(k)}:${entries.get(k) ?? 'null'}`).join(',')}}`).slice(7);
}

/** The `<v1-id>/json` file: id, parent, then the V1Image fields, with `os` placed in struct order. */
export function v1Json(id: string, parent: string | null, fields: ReadonlyArray<readonly [string, string]>, os: string | undefined): string {
  const out: Array<readonly [string, string]> = [['id', goString(id)]];
  if (parent !== null) out.push(['parent', goString(parent)]);
  const rest = fields.filter(([k]) => k !== 'os' && k !== 'Size');
  out.push(...rest);
  if (os !== undefined && os !== '') out.push(['os', goString(os)]);
  const size = fields.find(([k]) => k === 'Size');
  if (size !== undefined) out.push(size);
  return goObject(out);
}
