#!/bin/sh
# Oracle for the end-to-end cross-check: every svcctl request tshark decodes in a capture, in order,
# as `<opnum>\t<service name>\t<binary path>` (empty when the call has none). A frame carrying several
# requests gives one line whose fields join the values with \037 (unit separator: commas occur in
# binary paths). Options after the capture go to tshark (e.g. -o 'ntlmssp.nt_password:…' to decrypt).
# Usage: scripts/tshark_svcctl.sh capture.pcap [tshark options…]
cap="$1"
shift
exec tshark -r "$cap" "$@" -Y 'svcctl && dcerpc.pkt_type==0' -T fields -E occurrence=a -E "aggregator=$(printf '\037')" \
    -e svcctl.opnum -e svcctl.servicename -e svcctl.binarypathname 2>/dev/null
