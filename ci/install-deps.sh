#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Install the Debian packages mmsb builds and tests with (README.md, "Dependencies").
# Installs only what is missing, so a second run does nothing and needs no network.
# Usage: ci/install-deps.sh [--check]   (--check lists what is missing and exits 1 if anything is)
set -euo pipefail

PKGS=(
	gcc make clang llvm bpftool libbpf-dev libelf-dev zlib1g-dev
	systemtap-sdt-dev libjson-c-dev libpfm4-dev bpftrace python3 valgrind
	libdw-dev libdebuginfod1 libc6-dbg elfutils
	libprotobuf-c-dev protobuf-c-compiler golang-go
	libmicrohttpd-dev prometheus
)

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if [ "${1:-}" = "--check" ]; then
	if [ ${#missing[@]} -gt 0 ]; then
		echo "missing: ${missing[*]}"
		exit 1
	fi
	exit 0
fi

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#PKGS[@]} packages present"
	exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null; then
		echo "install-deps: need root to install: ${missing[*]}" >&2
		exit 1
	fi
	SUDO=sudo
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
