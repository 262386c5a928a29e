#!/usr/bin/env bash
# Installs what building and testing need on a fresh Debian machine of this kind (root, apt):
# tshark (the dissection oracle in tests), libpcap-dev (live capture), iproute2 (network namespaces
# for the live test; the replay into them uses libpcap's sendpacket from the test itself),
# chromium (headless, renders the HTML report in tests/it/report_html.rs and scripts/bench-report;
# about 25 s of apt, update included, on the CI machine).
# libpcap-dev is a convenience: without it build.rs links the runtime libpcap.so.0.8 through a
# symlink in OUT_DIR (scripts/check-libpcap-fallback.sh proves that path), so a non-root machine
# that lacks only libpcap-dev is fine.
set -euo pipefail
need=()
command -v tshark >/dev/null 2>&1 || need+=(tshark)
[ -e /usr/include/pcap.h ] || need+=(libpcap-dev)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
# setcap: the live test that runs the sensor unprivileged with file capabilities.
command -v setcap >/dev/null 2>&1 || [ -x /usr/sbin/setcap ] || [ -x /sbin/setcap ] || need+=(libcap2-bin)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    if [ "${need[*]}" = libpcap-dev ]; then
      echo "setup: no libpcap-dev and not root; build.rs falls back to the runtime libpcap" >&2
      exit 0
    fi
    echo "setup: need ${need[*]} but not root; install them by hand" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # tshark asks whether non-root users may capture; preseed "no".
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Python for the output tests (issue 14): the `communityid` reference implementation, `jsonschema`
# for EVE, pySigma with its sqlite backend for the Sigma rules. One venv outside the work tree, so
# it survives `cargo clean` and fresh clones on the same machine; reinstalled only when
# scripts/python-requirements.txt changes. Tests find it through scripts/pyenv (same path logic).
pyenv=$(bash "$(dirname "$0")/pyenv")
req="$(dirname "$0")/python-requirements.txt"
if ! cmp -s "$req" "$pyenv/requirements.txt" 2>/dev/null; then
  if ! python3 -c 'import ensurepip' 2>/dev/null; then
    [ "$(id -u)" = 0 ] || { echo "setup: need python3-venv but not root" >&2; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  fi
  rm -rf "$pyenv"
  python3 -m venv "$pyenv"
  "$pyenv/bin/pip" install -q --disable-pip-version-check -r "$req"
  cp "$req" "$pyenv/requirements.txt"
fi
