/**
 * A strict JSON parser (RFC 8259) that reports where it failed as line and column, and where each
 * top-level key starts. V8's JSON.parse messages no longer carry a position on Node 20, so
 * daemon.json errors could not otherwise name the line and column.
 */

export interface JsonPosition {
  offset: number;
  /** 1-based. */
  line: number;
  /** 1-based, in UTF-16 code units. */
  column: number;
}

export class JsonSyntaxError extends Error {
  constructor(readonly what: string, readonly position: JsonPosition) {
    super(`${what} at line ${position.line}, column ${position.column}`);
    this.name = 'JsonSyntaxError';
  }
}

export function positionAt(text: string, offset: number): JsonPosition {
  let line = 1;
  let col = 1;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text[i] === '\n') {
      line++;
      col = 1;
    } else col++;
  }
  return { offset, line, column: col };
}

export interface ParsedJson {
  value: unknown;
  /** Top-level object keys → position of the key's opening quote (empty when not an object). */
  keyPositions: Map<string, JsonPosition>;
}

export function parseJsonWithPositions(text: string): ParsedJson {
  let i = 0;
  const keyPositions = new Map<string, JsonPosition>();
  const fail = (what: string, at = i): never => {
    if (at >= text.length) what = 'unexpected end of JSON input';
    throw new JsonSyntaxError(what, positionAt(text, at));
  };
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i] ?? '')) i++;
  };
  const describe = (): string => (i >= text.length ? 'unexpected end of JSON input' : `invalid character ${JSON.stringify(text[i])}`);
  const str = (): string => {
    if (text[i] !== '"') fail(describe());
    i++;
    let out = '';
    for (;;) {
      if (i >= text.length) fail('unexpected end of JSON input');
      const ch = text[i] ?? '';
      if (ch === '"') {
        i++;
        return out;
      }
      if (ch.charCodeAt(0) < 0x20) fail('invalid control character in string literal');
      if (ch === '\\') {
        const e = text[i + 1];
        const map: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
        if (e !== undefined && map[e] !== undefined) {
          out += map[e];
          i += 2;
        } else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
          out += String.fromCharCode(parseInt(text.slice(i + 2, i + 6), 16));
          i += 6;
        } else fail('invalid escape in string literal', i + 1);
      } else {
        out += ch;
        i++;
      }
    }
  };
  const num = (): number => {
    const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i));
    if (!m) fail(describe());
    i += m![0].length;
    return Number(m![0]);
  };
  const value = (depth: number, top: boolean): unknown => {
    ws();
    if (depth > 1000) fail('exceeded max depth');
    const ch = text[i];
    if (ch === '{') {
      i++;
      const obj: Record<string, unknown> = {};
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        const at = i;
        const k = str();
        if (top && !keyPositions.has(k)) keyPositions.set(k, positionAt(text, at));
        ws();
        if (text[i] !== ':') fail(`${describe()} after object key`);
        i++;
        obj[k] = value(depth + 1, false);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return obj;
        }
        fail(`${describe()} after object key:value pair`);
      }
    }
    if (ch === '[') {
      i++;
      const arr: unknown[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1, false));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return arr;
        }
        fail(`${describe()} after array element`);
      }
    }
    if (ch === '"') return str();
    if (ch === '-' || (ch !== undefined && ch >= '0' && ch <= '9')) return num();
    for (const [lit, v] of [['true', true], ['false', false], ['null', null]] as const) {
      if (text.startsWith(lit, i)) {
        i += lit.length;
        return v;
      }
    }
    return fail(`${describe()} looking for beginning of value`);
  };
  const v = value(0, true);
  ws();
  if (i < text.length) fail(`invalid character ${JSON.stringify(text[i])} after top-level value`);
  return { value: v, keyPositions };
}
