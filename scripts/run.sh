#!/usr/bin/env bash
# The main job: set up, build if needed, then serve the web app with the default model on
# http://127.0.0.1:${PORT:-8080}.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
export PORT="${PORT:-8080}"
echo "Anomalens: http://127.0.0.1:${PORT}/"
exec node scripts/serve.mjs
