#!/usr/bin/env bash
# System packages the test tiers need beyond Python: real tcpdump, iproute2, ethtool and curl for the capture
# tests (network namespaces + VXLAN; the collector script uploads with curl), Chromium for the report page test, tshark for the report benchmark,
# tcpreplay for the capture-loss benchmark (paced VXLAN frames), tmux for the `mirrorcap watch` screen test.
# Needs root (CI runs as root); on a machine without root the tests that need these skip with a reason.
set -euo pipefail
packages=(tcpdump iproute2 ethtool curl chromium tshark tcpreplay tmux)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
    echo "system packages present: ${packages[*]}"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "not root: cannot install ${missing[*]}; tests that need them will skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "installed: ${missing[*]}"
