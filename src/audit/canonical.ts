/**
 * RFC 8785 (JSON Canonicalization Scheme) for the values JSON.parse produces: object keys
 * sorted by UTF-16 code units (what Array.prototype.sort does by default), no whitespace,
 * strings and numbers serialised as ECMAScript's JSON.stringify does (RFC 8785 adopts exactly
 * that serialisation). Written here rather than taken from a package: it is a screenful, it
 * sits on the export's hot path, and fusing redaction into the same walk saves a copy of
 * every event.
 */

/** Keys whose values are credentials or derived from them. */
export const SECRET_KEY = /password|passphrase|secret|token|private_?key|^api_?key$/i;
export const REDACTED = '[REDACTED]';

export const isSecretKey = (key: string) => SECRET_KEY.test(key);

export interface CanonicalOptions {
  /** Values under keys this accepts are replaced by REDACTED (at any depth). */
  redact?: (key: string) => boolean;
}

export function canonicalJson(value: unknown, options: CanonicalOptions = {}): string {
  return serialize(value, options.redact);
}

function serialize(value: unknown, redact: ((key: string) => boolean) | undefined): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`${value} has no JSON representation`);
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i += 1) {
          if (i > 0) out += ',';
          const item: unknown = value[i];
          out += item === undefined ? 'null' : serialize(item, redact);
        }
        return `${out}]`;
      }
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record).sort();
      let out = '{';
      let first = true;
      for (const key of keys) {
        const item = record[key];
        if (item === undefined) continue;
        if (!first) out += ',';
        first = false;
        out += `${JSON.stringify(key)}:${redact?.(key) ? JSON.stringify(REDACTED) : serialize(item, redact)}`;
      }
      return `${out}}`;
    }
    default:
      throw new TypeError(`A ${typeof value} has no JSON representation`);
  }
}
