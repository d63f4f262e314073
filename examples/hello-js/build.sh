#!/bin/sh
# Builds hello-js.wasm with componentize-js: the world of wit/world.wit,
# with the dbagent:api package (the SDK's wit/) as its dependency, without
# the HTTP support componentize-js adds by default (the host provides no
# wasi:http: `-d http fetch-event`).
#   examples/hello-js/build.sh [OUTPUT.wasm]
# COMPONENTIZE_JS names the tool (default: componentize-js on PATH, else
# the one scripts/setup installs).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/hello-js.wasm}
tool=${COMPONENTIZE_JS:-$(command -v componentize-js || echo "${DBAGENT_TEST_OPT:-/opt/dbagent-test}/js/node_modules/.bin/componentize-js")}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/wit/deps/dbagent-api"
cp "$here/wit/world.wit" "$work/wit/"
cp "$here/../../sdk/wit/"*.wit "$work/wit/deps/dbagent-api/"
cp "$here/app.js" "$here/dbagent.js" "$work/"
(cd "$work" && "$tool" app.js --wit wit --world-name hello-js -d http fetch-event -o hello-js.wasm)
cp "$work/hello-js.wasm" "$out"
