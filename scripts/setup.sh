#!/usr/bin/env bash
# Installs whatever is missing to build, run and test Anomalens. Idempotent, and quick (a few
# seconds) when everything is present. Uses an emsdk already on PATH if there is one.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(cmake g++ make python3 libxnnpack-dev libpthreadpool-dev libstb-dev
  libgtest-dev chromium ffmpeg python3-torch python3-torchvision python3-onnx python3-numpy
  python3-pil python3-matplotlib clang libclang-rt-14-dev)
if ! command -v em++ >/dev/null 2>&1; then apt_packages+=(emscripten); fi
# Node may come from elsewhere (this machine's image ships Node 20); only fall back to Debian's.
if ! command -v node >/dev/null 2>&1; then apt_packages+=(nodejs); fi
if ! command -v npm >/dev/null 2>&1; then apt_packages+=(npm); fi

missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages from the committed lockfile; reinstall only when the lockfile changed.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  touch node_modules/.package-lock.json
fi
echo "setup: ok"
