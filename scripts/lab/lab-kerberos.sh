#!/usr/bin/env bash
# The Kerberos lab (issue 16): Samba 4.17 as an Active Directory domain controller that is also the
# victim, one impacket attacker, both in network namespaces this script creates, tcpdump on the
# DC's bridge so the client <-> KDC exchange (88/udp, 88/tcp) is in each capture beside the SMB
# session that presents the ticket. Never part of CI.
#
#   scripts/lab/lab-kerberos.sh setup        lab.sh setup (samba, smbclient, tcpdump, impacket venv)
#                                            plus samba-ad-dc, krb5-user, winbind (apt)
#   scripts/lab/lab-kerberos.sh up [clear|enc]
#                                            provisions the domain PSXLAB.TEST (DC dc1.psxlab.test,
#                                            192.0.2.20, ns psxkrb-dc; attacker 192.0.2.10, ns
#                                            psxkrb-att0) and starts `samba`; `enc` sets
#                                            `server smb encrypt = required`, `clear` turns it off
#   scripts/lab/lab-kerberos.sh record OUT.pcap -- COMMAND...
#                                            tcpdump on br0 while COMMAND runs in psxkrb-att0;
#                                            `$IMPACKET` is the venv's bin dir, KRB5_CONFIG points
#                                            at the lab realm; then exports the DC account's keys
#                                            with `samba-tool domain exportkeytab` to OUT.keytab
#   scripts/lab/lab-kerberos.sh tsch-up      starts atsvc_responder.py, a minimal MS-TSCH server
#                                            behind smbd at np/atsvc (Samba has none); `down`
#                                            stops it
#   scripts/lab/lab-kerberos.sh down         stops samba, deletes the namespaces
#
# The recipe of captures/lab/l1..l5 (user Administrator, password Passw0rd!Lab). MIT kinit and kvno
# fetch the TGT and the cifs ticket (impacket 0.13.1's own TGS-REQ has no body checksum in its
# authenticator and Samba's KDC refuses it, KRB_AP_ERR_INAPP_CKSUM); impacket then uses the cache
# (-k -no-pass). Each recording starts with an empty cache, so the AS and TGS exchanges are in it.
#   KGET="echo 'Passw0rd!Lab' | kinit Administrator@PSXLAB.TEST >/dev/null && kvno cifs/dc1.psxlab.test"
#   T="-k -no-pass -dc-ip 192.0.2.20 -target-ip 192.0.2.20 PSXLAB.TEST/Administrator@dc1.psxlab.test"
#   scripts/lab/lab-kerberos.sh up clear
#   scripts/lab/lab-kerberos.sh record l1_krb_psexec.pcap -- "$KGET &&" '$IMPACKET/psexec.py' $T whoami
#   scripts/lab/lab-kerberos.sh record l2_krb_smbexec.pcap -- "$KGET &&" '$IMPACKET/smbexec.py' $T
#   scripts/lab/lab-kerberos.sh record l3_krb_atexec.pcap -- "$KGET &&" '$IMPACKET/atexec.py' \
#     -k -no-pass -dc-ip 192.0.2.20 PSXLAB.TEST/Administrator@dc1.psxlab.test whoami
#   scripts/lab/lab-kerberos.sh record l4_krb_benign_smbclient.pcap -- "$KGET &&" smbclient \
#     '//dc1.psxlab.test/C\$' -I 192.0.2.20 --use-kerberos=required -c "'ls; cd Windows; get win.ini /dev/null'"
#   scripts/lab/lab-kerberos.sh down; scripts/lab/lab-kerberos.sh up enc
#   scripts/lab/lab-kerberos.sh record l5_krb_psexec_enc.pcap -- "$KGET &&" '$IMPACKET/psexec.py' $T whoami
#   scripts/lab/lab-kerberos.sh down
# l6 and l7 (profile clear; l7's DCE-RPC bind presents a host/ ticket, so kvno fetches both):
#   scripts/lab/lab-kerberos.sh record l6_krb_services.pcap -- "$KGET &&" \
#     '$IMPACKET/services.py' $T create -name KrbEvilSvc -display KrbEvilSvc \
#     -path "'C:\\Windows\\Temp\\krbpayload.exe'" ';' '$IMPACKET/services.py' $T start -name KrbEvilSvc \
#     ';' '$IMPACKET/services.py' $T delete -name KrbEvilSvc
#   scripts/lab/lab-kerberos.sh tsch-up
#   scripts/lab/lab-kerberos.sh record l7_krb_atexec_tsch.pcap -- "$KGET host/dc1.psxlab.test &&" \
#     '$IMPACKET/atexec.py' -k -no-pass -dc-ip 192.0.2.20 PSXLAB.TEST/Administrator@dc1.psxlab.test whoami
#
# The keytab holds the keys of the DC's machine account DC1$, which encrypt the cifs/ and host/
# service tickets of dc1.psxlab.test: lab secrets, for decryption tests only.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
LAB_DIR="${PSXKRB_DIR:-/var/tmp/psexec-krblab}"
VENV="${PSXLAB_VENV:-/var/tmp/psexec-lab-venv}"
# PSXKRB_NS lets two labs run side by side (with their own PSXKRB_DIR).
DC_NS="psxkrb-dc${PSXKRB_NS:-}"
ATT_NS="psxkrb-att${PSXKRB_NS:-0}"
DC_IP=192.0.2.20
ATT_IP=192.0.2.10
REALM=PSXLAB.TEST
DOMAIN=PSXLAB
DC_HOST=dc1
ADMIN_PASS='Passw0rd!Lab'
RECORD_TIMEOUT="${PSXLAB_TIMEOUT:-300}"

die() { echo "krblab: $*" >&2; exit 1; }
[ "${CI:-}" = true ] && die "the lab never runs in CI"
[ "$(id -u)" = 0 ] || die "needs root (namespaces, samba, tcpdump)"

cmd_setup() {
  "$HERE/lab.sh" setup
  local need=()
  for p in samba-ad-dc samba-ad-provision samba-dsdb-modules python3-samba krb5-user winbind; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
  done
  if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  systemctl disable --now samba-ad-dc winbind >/dev/null 2>&1 || true
  echo "krblab: setup done"
}

conf() { echo "$LAB_DIR/etc/smb.conf"; }

krb5_conf() {
  cat > "$LAB_DIR/krb5.conf" <<EOF
[libdefaults]
  default_realm = $REALM
  dns_lookup_realm = false
  dns_lookup_kdc = false
[realms]
  $REALM = {
    kdc = $DC_IP
  }
[domain_realm]
  .psxlab.test = $REALM
  psxlab.test = $REALM
EOF
}

provision() {
  rm -rf "$LAB_DIR"
  mkdir -p "$LAB_DIR/shares/admin" "$LAB_DIR/shares/c/Windows" "$LAB_DIR/log" "$LAB_DIR/run"
  printf '[fonts]\r\n[extensions]\r\n' > "$LAB_DIR/shares/c/Windows/win.ini"
  # Administrator maps to a uid of its own (idmap), not root: let it write like on Windows.
  chmod -R a+rwX "$LAB_DIR/shares"
  samba-tool domain provision --quiet --use-rfc2307 \
    --realm="$REALM" --domain="$DOMAIN" --server-role=dc --dns-backend=SAMBA_INTERNAL \
    --host-name="$DC_HOST" --host-ip="$DC_IP" --adminpass="$ADMIN_PASS" \
    --targetdir="$LAB_DIR" \
    --option="interfaces = br0" --option="bind interfaces only = yes" \
    --option="dns forwarder = 127.0.0.1" --option="disable netbios = yes" \
    --option="log level = 1" --option="log file = $LAB_DIR/log/%m.log" \
    --option="pid directory = $LAB_DIR/run" \
    --option="load printers = no" --option="disable spoolss = yes" >"$LAB_DIR/provision.log" 2>&1 \
    || { tail -20 "$LAB_DIR/provision.log"; die "provision failed"; }
  # Debian's defaults leak into the provisioned file: no home, printer or print$ shares on the
  # victim. ADMIN$ and C$ go first: impacket's psexec uploads to the first writable share that
  # NetrShareEnum lists, and Samba lists them in file order.
  local shares="$LAB_DIR/admin-shares.conf"
  cat > "$shares" <<EOF
[ADMIN\$]
  path = $LAB_DIR/shares/admin
  read only = no
[C\$]
  path = $LAB_DIR/shares/c
  read only = no
EOF
  awk -v shares="$shares" '
    /^\[/ {
      if ($0 != "[global]" && !done) { while ((getline l < shares) > 0) print l; done = 1 }
      skip = ($0 == "[homes]" || $0 == "[printers]" || $0 == "[print$]")
    }
    !skip' "$(conf)" > "$(conf).new" && mv "$(conf).new" "$(conf)"
}

set_profile() {
  local profile="$1" c; c="$(conf)"
  sed -i '/server smb encrypt/d' "$c"
  case "$profile" in
    clear) sed -i 's/^\[global\]$/[global]\n\tserver smb encrypt = off/' "$c" ;;
    enc) sed -i 's/^\[global\]$/[global]\n\tserver smb encrypt = required\n\tserver min protocol = SMB3/' "$c" ;;
    *) die "unknown profile $profile (clear, enc)" ;;
  esac
}

# Samba's ncalrpc directory (default /run/samba/ncalrpc) holds the unix sockets smbd hands named
# pipes to (np/<pipe>): one per lab, or two labs side by side take over each other's pipes.
own_ncalrpc_dir() {
  local c; c="$(conf)"
  sed -i '/ncalrpc dir/d' "$c"
  sed -i "s|^\[global\]\$|[global]\n\tncalrpc dir = $LAB_DIR/ncalrpc|" "$c"
}

cmd_up() {
  local profile="${1:-clear}"
  command -v samba >/dev/null || die "no samba: run setup first"
  ip netns list | grep -q "^$DC_NS\b" && die "lab already up (run down first)"
  # Whatever fails from here on leaves nothing behind.
  trap 'echo "krblab: up failed, cleaning up" >&2; cmd_down' EXIT
  [ -f "$(conf)" ] || provision
  sed -i '/server min protocol/d' "$(conf)"
  set_profile "$profile"
  own_ncalrpc_dir
  krb5_conf
  ip netns add "$DC_NS"
  ip -n "$DC_NS" link set lo up
  ip -n "$DC_NS" link add br0 type bridge
  ip -n "$DC_NS" addr add "$DC_IP/24" dev br0
  ip -n "$DC_NS" link set br0 up
  ip netns add "$ATT_NS"
  # `ip netns exec` shows /etc/netns/NS/hosts as /etc/hosts: the DC's name for tools that take no
  # -target-ip (atexec.py) and for smbclient.
  mkdir -p "/etc/netns/$ATT_NS"
  printf '127.0.0.1 localhost\n%s %s.%s %s\n' "$DC_IP" "$DC_HOST" "${REALM,,}" "$DC_HOST" \
    > "/etc/netns/$ATT_NS/hosts"
  ip -n "$ATT_NS" link set lo up
  ip -n "$ATT_NS" link add eth0 type veth peer name v0 netns "$DC_NS"
  ip -n "$ATT_NS" addr add "$ATT_IP/24" dev eth0
  ip -n "$ATT_NS" link set eth0 up
  ip -n "$DC_NS" link set v0 master br0 up
  # Offloads off on both ends: MTU-sized frames with valid checksums in the capture.
  ip netns exec "$ATT_NS" ethtool -K eth0 tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
  ip netns exec "$DC_NS" ethtool -K v0 tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
  ip netns exec "$DC_NS" ethtool -K br0 tso off gso off gro off tx off >/dev/null 2>&1 || true
  ip netns exec "$DC_NS" samba -s "$(conf)" -D
  local up=""
  for _ in $(seq 100); do
    if ip netns exec "$DC_NS" bash -c "exec 3<>/dev/tcp/$DC_IP/445 && exec 4<>/dev/tcp/$DC_IP/88" 2>/dev/null; then
      up=1
      break
    fi
    sleep 0.2
  done
  [ -n "$up" ] || die "samba did not come up (see $LAB_DIR/var/log)"
  trap - EXIT
  echo "krblab: up, profile $profile, DC $DC_HOST.${REALM,,} $DC_IP (ns $DC_NS), attacker $ATT_IP (ns $ATT_NS)"
}

cmd_record() {
  local out="$1"; shift
  [ "${1:-}" = "--" ] && shift
  [ $# -gt 0 ] || die "record OUT.pcap -- COMMAND..."
  ip netns list | grep -q "^$ATT_NS\b" || die "lab not up"
  local log="$LAB_DIR/tcpdump.$$.log"
  # A fresh credential cache per recording: every capture holds its own AS and TGS exchanges.
  rm -f "$LAB_DIR/att.ccache"
  ip netns exec "$DC_NS" tcpdump -i br0 -s 0 -U -w "$out" >"$log" 2>&1 &
  local td=$!
  trap 'kill -INT "$td" 2>/dev/null || true' EXIT
  for _ in $(seq 50); do grep -qs "listening on" "$log" && break; sleep 0.1; done
  local cmd="${*//\$IMPACKET/$VENV/bin}"
  set +e
  timeout "$RECORD_TIMEOUT" ip netns exec "$ATT_NS" env KRB5_CONFIG="$LAB_DIR/krb5.conf" \
    KRB5CCNAME="$LAB_DIR/att.ccache" bash -c "cd /tmp && $cmd"
  local rc=$?
  set -e
  sleep 1  # the last FIN/ACKs
  kill -INT "$td"
  wait "$td" || true
  trap - EXIT
  grep -E "packets (captured|dropped)" "$log" || true
  rm -f "$out.keytab"
  samba-tool domain exportkeytab "$out.keytab" -s "$(conf)" --principal="${DC_HOST^^}\$" >/dev/null
  echo "krblab: wrote $out and $out.keytab (command exit $rc)"
}

# The Task Scheduler responder (atsvc_responder.py): smbd hands \pipe\atsvc to the unix socket
# np/atsvc of the lab's ncalrpc directory; the responder answers atexec.py's MS-TSCH calls there.
cmd_tsch_up() {
  ip netns list | grep -q "^$DC_NS\b" || die "lab not up"
  local keytab="$LAB_DIR/atsvc-responder.keytab" sock="$LAB_DIR/ncalrpc/np/atsvc"
  rm -f "$keytab"
  samba-tool domain exportkeytab "$keytab" -s "$(conf)" --principal="${DC_HOST^^}\$" >/dev/null
  ip netns exec "$DC_NS" "$VENV/bin/python" "$HERE/atsvc_responder.py" "$sock" "$keytab" \
    "$LAB_DIR/shares/admin" >"$LAB_DIR/log/atsvc-responder.log" 2>&1 &
  echo $! > "$LAB_DIR/run/atsvc-responder.pid"
  for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
  [ -S "$sock" ] || die "atsvc responder did not start (see $LAB_DIR/log/atsvc-responder.log)"
  echo "krblab: MS-TSCH responder on $sock"
}

tsch_down() {
  local pidfile="$LAB_DIR/run/atsvc-responder.pid"
  [ -f "$pidfile" ] || return 0
  kill "$(cat "$pidfile")" 2>/dev/null || true
  rm -f "$pidfile" "$LAB_DIR/ncalrpc/np/atsvc"
}

cmd_down() {
  tsch_down
  if [ -f "$LAB_DIR/run/samba.pid" ]; then
    kill "$(cat "$LAB_DIR/run/samba.pid")" 2>/dev/null || true
  fi
  # samba's children (smbd, winbindd, samba-dcerpcd) end with it; give them a bounded moment,
  # then end whatever still runs in the lab's own namespaces.
  local ns pid
  for ns in "$DC_NS" "$ATT_NS"; do
    for _ in $(seq 50); do
      ip netns pids "$ns" 2>/dev/null | grep -q . || break
      sleep 0.2
    done
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "/etc/netns/$ATT_NS"
  echo "krblab: down"
}

case "${1:-}" in
  setup) shift; cmd_setup "$@" ;;
  up) shift; cmd_up "$@" ;;
  record) shift; [ $# -ge 1 ] || die "record OUT.pcap -- COMMAND..."; cmd_record "$@" ;;
  down) shift; cmd_down "$@" ;;
  tsch-up) shift; cmd_tsch_up "$@" ;;
  *) sed -n '2,40p' "$0"; exit 1 ;;
esac
