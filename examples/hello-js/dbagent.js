// Small helpers for dbagent plugins in JavaScript, matching what the Rust
// SDK gives: routing by method and path, JSON answers, errors that carry
// their HTTP status, and queries whose rows come back as objects.

import { query as pgQuery } from 'dbagent:api/postgres@0.1.0';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function response(status, value) {
  return {
    status,
    headers: [{ name: 'content-type', value: 'application/json' }],
    body: encoder.encode(JSON.stringify(value)),
  };
}

function toValue(v) {
  if (v === null || v === undefined) return { tag: 'null' };
  if (typeof v === 'boolean') return { tag: 'boolean', val: v };
  if (typeof v === 'bigint') return { tag: 'int', val: v };
  if (typeof v === 'number') {
    return Number.isInteger(v) ? { tag: 'int', val: BigInt(v) } : { tag: 'float', val: v };
  }
  return { tag: 'text', val: String(v) };
}

function fromValue(v) {
  switch (v.tag) {
    case 'null': return null;
    case 'int': return Number(v.val);
    case 'json': return JSON.parse(v.val);
    case 'bytes': return Array.from(v.val, (b) => b.toString(16).padStart(2, '0')).join('');
    default: return v.val;
  }
}

// Rows of `sql` as objects; parameters are bound ($1, $2 …), never spliced.
// A PostgreSQL error is an HttpError with the status its SQLSTATE means.
export function query(sql, params = [], database = undefined) {
  let rows;
  try {
    rows = pgQuery(database, sql, params.map(toValue));
  } catch (e) {
    const error = e.payload ?? e;
    const state = error.sqlstate ?? '';
    const status = state.startsWith('08') ? 503 : state === '42501' ? 403 : 500;
    throw new HttpError(status, error.message ?? String(e));
  }
  return rows.rows.map((row) =>
    Object.fromEntries(rows.columns.map((name, i) => [name, fromValue(row[i])])));
}

export class Request {
  constructor(raw) {
    this.raw = raw;
    this.method = raw.method;
    this.path = raw.path || '/';
    this.user = raw.user;
    this.body = raw.body;
    this.params = new URLSearchParams(raw.query);
  }

  queryParam(name) {
    return this.params.get(name);
  }

  json() {
    try {
      return JSON.parse(decoder.decode(this.body) || 'null');
    } catch {
      throw new HttpError(400, 'Invalid json format');
    }
  }
}

// Handlers by method and path pattern (`/items/:id`).
export class Router {
  constructor() {
    this.routes = [];
  }

  get(pattern, handler) { return this.route('GET', pattern, handler); }

  post(pattern, handler) { return this.route('POST', pattern, handler); }

  route(method, pattern, handler) {
    this.routes.push([method, pattern.split('/').filter(Boolean), handler]);
    return this;
  }

  // The response to `raw`: the handler's value as JSON (200), an HttpError
  // as its status, 404 or 405 when no route matches. Any other exception
  // propagates: the host answers 500 with its message.
  dispatch(raw) {
    const request = new Request(raw);
    const segments = request.path.split('/').filter(Boolean).map(decodeURIComponent);
    let allowed = false;
    for (const [method, pattern, handler] of this.routes) {
      if (pattern.length !== segments.length) continue;
      const params = {};
      const matches = pattern.every((want, i) => {
        if (want.startsWith(':')) {
          params[want.slice(1)] = segments[i];
          return true;
        }
        return want === segments[i];
      });
      if (!matches) continue;
      if (method !== request.method) {
        allowed = true;
        continue;
      }
      try {
        return response(200, handler(request, params));
      } catch (e) {
        if (e instanceof HttpError) return response(e.status, { error: e.message });
        throw e;
      }
    }
    return allowed
      ? response(405, { error: 'Method not allowed.' })
      : response(404, { error: 'URL not found.' });
  }
}
