"""Small helpers for dbagent plugins in Python, matching what the Rust SDK
gives: routing by method and path, JSON answers, errors that carry their
HTTP status, and queries whose rows come back as dicts."""

import json
from urllib.parse import parse_qs, unquote

from componentize_py_types import Err
from wit_world.imports import http_types, postgres


class HttpError(Exception):
    """An error answered as {"error": message} with its status."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class Request:
    """The host's request with helpers: method, path (after the plugin's
    prefix), user, headers, body, query parameters, JSON body."""

    def __init__(self, raw):
        self.raw = raw
        self.method = raw.method
        self.prefix = raw.prefix
        self.path = raw.path or "/"
        self.user = raw.user
        self.headers = {h.name: h.value for h in raw.headers}
        self.body = bytes(raw.body)
        self._query = parse_qs(raw.query, keep_blank_values=True)

    def query_param(self, name):
        values = self._query.get(name)
        return values[0] if values else None

    def json(self):
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            raise HttpError(400, "Invalid json format")


def response(status, value):
    body = json.dumps(value).encode()
    return http_types.Response(
        status=status,
        headers=[http_types.Header(name="content-type", value="application/json")],
        body=body,
    )


def _value(v):
    if v is None:
        return postgres.Value_Null()
    if isinstance(v, bool):
        return postgres.Value_Boolean(v)
    if isinstance(v, int):
        return postgres.Value_Int(v)
    if isinstance(v, float):
        return postgres.Value_Float(v)
    return postgres.Value_Text(str(v))


def _cell(v):
    if isinstance(v, postgres.Value_Null):
        return None
    if isinstance(v, postgres.Value_Json):
        return json.loads(v.value)
    if isinstance(v, postgres.Value_Bytes):
        return bytes(v.value).hex()
    return v.value


def query(sql, params=(), database=None):
    """Rows of `sql` as dicts; parameters are bound ($1, $2 …), never
    spliced. A PostgreSQL error is an HttpError with the status its SQLSTATE
    means (a connection failure 503, a privilege 403, the rest 500)."""
    try:
        rows = postgres.query(database, sql, [_value(p) for p in params])
    except Err as e:
        error = e.value
        status = 503 if error.sqlstate.startswith("08") else 403 if error.sqlstate == "42501" else 500
        raise HttpError(status, error.message)
    return [dict(zip(rows.columns, map(_cell, row))) for row in rows.rows]


class Router:
    """Handlers by method and path pattern (`/items/:id`)."""

    def __init__(self):
        self.routes = []

    def route(self, method, pattern):
        def register(handler):
            self.routes.append((method, [p for p in pattern.split("/") if p], handler))
            return handler
        return register

    def get(self, pattern):
        return self.route("GET", pattern)

    def post(self, pattern):
        return self.route("POST", pattern)

    def dispatch(self, raw):
        """The response to `raw`: the handler's value as JSON (200), an
        HttpError as its status, 404 or 405 when no route matches. Any
        other exception propagates: the host answers 500 with the
        traceback's last line."""
        request = Request(raw)
        segments = [unquote(p) for p in request.path.split("/") if p]
        allowed = False
        for method, pattern, handler in self.routes:
            if len(pattern) != len(segments):
                continue
            params = {}
            for want, got in zip(pattern, segments):
                if want.startswith(":"):
                    params[want[1:]] = got
                elif want != got:
                    break
            else:
                if method != request.method:
                    allowed = True
                    continue
                try:
                    return response(200, handler(request, params))
                except HttpError as e:
                    return response(e.status, {"error": e.message})
        if allowed:
            return response(405, {"error": "Method not allowed."})
        return response(404, {"error": "URL not found."})
