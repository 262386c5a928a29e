#!/bin/sh
# Oracle for the end-to-end cross-check: every svcctl request tshark decodes in a capture, in order,
# as `<opnum>\t<service name>\t<binary path>` (empty when the call has none).
# Usage: scripts/tshark_svcctl.sh capture.pcap
exec tshark -r "$1" -Y 'svcctl && dcerpc.pkt_type==0' -T fields \
    -e svcctl.opnum -e svcctl.servicename -e svcctl.binarypathname 2>/dev/null
