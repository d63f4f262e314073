"""hello-py: an example dbagent plugin in Python.

GET /hello-py                     {"hello": "<user>", "language": "python"}
GET /hello-py/databases?prefix=x  the databases whose name starts with x
GET /hello-py/boom                raises: the host answers 500 with the traceback
GET /hello-py/hog                 allocates past the memory limit: 500
"""

from wit_world import exports

from dbagent import HttpError, Router, query

router = Router()


@router.get("/")
def hello(request, params):
    return {"hello": request.user or "world", "language": "python"}


@router.get("/databases")
def databases(request, params):
    prefix = request.query_param("prefix") or ""
    if len(prefix) > 63:
        raise HttpError(400, "prefix is at most 63 characters")
    rows = query(
        "SELECT datname::text AS name FROM pg_database WHERE starts_with(datname, $1) ORDER BY 1",
        [prefix],
    )
    return {"databases": [row["name"] for row in rows]}


@router.get("/boom")
def boom(request, params):
    raise RuntimeError("boom from hello-py")


@router.get("/hog")
def hog(request, params):
    hoard = [bytearray(1 << 20) for _ in range(1024)]
    return {"allocated_mib": len(hoard)}


class Handler(exports.Handler):
    def handle(self, request):
        return router.dispatch(request)
