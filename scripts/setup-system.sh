#!/usr/bin/env bash
# Installs the Debian packages the crate's optional features need at build or test time:
#   libclang-dev        the `v4l` feature (v4l2-sys generates its bindings with bindgen)
#   mesa-vulkan-drivers the `wgpu` feature's tests (lavapipe, Mesa's software Vulkan)
# A package already present is left alone, so a second run costs nothing.
set -euo pipefail

wanted=(libclang-dev mesa-vulkan-drivers libvulkan1)
missing=()
for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if ! command -v apt-get >/dev/null; then
    echo "setup-system: need ${missing[*]} but apt-get is missing; install them with your package manager" >&2
    exit 1
fi
sudo=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "setup-system: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
fi
echo "setup-system: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
