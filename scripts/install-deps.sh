#!/usr/bin/env bash
# Installs every Debian 12 package that Baton's build, tests, benchmarks and demo need.
# Idempotent: it asks dpkg what is missing, runs `apt-get update` at most once, and installs only that.
set -euo pipefail

packages=(
  # toolchain
  g++ make cmake ninja-build pkg-config git ca-certificates
  # libraries (Boost pinned to 1.81: the unversioned libboost-dev is 1.74 and conflicts)
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libhiredis-dev libssl-dev libspdlog-dev libfmt-dev libcli11-dev libtomlplusplus-dev
  # the allocator of the baton executable: threads free what others allocated (see docs/BENCHMARKS.md)
  libjemalloc-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # the real server the integration tests and the demo start on a loopback port, and openssl to
  # make the certificates of the TLS tests
  redis-server redis-tools openssl
)

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$package")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: not root and no sudo; install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# policy-rc.d is not touched: on a machine without an init system the redis-server service simply
# does not start, and the tests start their own server on a free port anyway.
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
