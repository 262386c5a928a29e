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
