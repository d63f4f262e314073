#!/bin/sh
# Builds hello-py.wasm with componentize-py: the world of wit/world.wit,
# with the dbagent:api package (the SDK's wit/) as its dependency.
#   examples/hello-py/build.sh [OUTPUT.wasm]
# COMPONENTIZE_PY names the tool (default: componentize-py on PATH, else
# the one scripts/setup installs).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/hello-py.wasm}
tool=${COMPONENTIZE_PY:-$(command -v componentize-py || echo "${DBAGENT_TEST_OPT:-/opt/dbagent-test}/componentize-py-venv/bin/componentize-py")}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/wit/deps/dbagent-api"
cp "$here/wit/world.wit" "$work/wit/"
cp "$here/../../sdk/wit/"*.wit "$work/wit/deps/dbagent-api/"
"$tool" -d "$work/wit" -w hello-py componentize -p "$here" app -o "$out"
