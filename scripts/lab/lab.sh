#!/usr/bin/env bash
# The project's recording lab (/work/shared/lab-notes.md): a Samba victim and impacket attackers in
# network namespaces on this machine, 192.0.2.0/24 inside the namespaces only, tcpdump on the
# victim's bridge. For new lab captures and large benchmark recordings. Never part of CI.
#
#   scripts/lab/lab.sh setup                 install samba, smbclient, tcpdump, ethtool (apt) and
#                                            impacket 0.13.1 in a venv (PyPI); adds the unix user
#                                            `admin` and group `labadmins` to this machine
#   scripts/lab/lab.sh up [clear|default|nt1|enc] [ATTACKERS]
#                                            namespaces psxlab-victim + psxlab-att0..N-1, smbd
#   scripts/lab/lab.sh record OUT.pcap ATT -- COMMAND...
#                                            tcpdump on br0 while COMMAND runs in psxlab-attATT;
#                                            `$IMPACKET` in COMMAND is the venv's bin dir
#   scripts/lab/lab.sh down                  stops smbd, deletes the namespaces
#
# Example (the lab's a_psexec_default):
#   scripts/lab/lab.sh up clear
#   scripts/lab/lab.sh record /tmp/psexec.pcap 0 -- '$IMPACKET/psexec.py' 'admin:Passw0rd!Lab@192.0.2.20' whoami
#   scripts/lab/lab.sh down
set -euo pipefail

LAB_DIR="${PSXLAB_DIR:-/var/tmp/psexec-lab}"
VENV="${PSXLAB_VENV:-/var/tmp/psexec-lab-venv}"
VICTIM=psxlab-victim
VICTIM_IP=192.0.2.20
NET_PREFIX=24
USER_NAME=admin
USER_PASS='Passw0rd!Lab'
GROUP=labadmins
# Longest a recorded command may run.
RECORD_TIMEOUT="${PSXLAB_TIMEOUT:-300}"

die() { echo "lab: $*" >&2; exit 1; }
[ "${CI:-}" = true ] && die "the lab never runs in CI"
[ "$(id -u)" = 0 ] || die "needs root (namespaces, smbd, tcpdump)"

att_ns() { echo "psxlab-att$1"; }

cmd_setup() {
  local need=()
  for p in samba smbclient tcpdump ethtool; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
  if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  # The packaged smbd/nmbd services are not the lab's: keep them off.
  systemctl disable --now smbd nmbd samba-ad-dc >/dev/null 2>&1 || true
  if [ ! -x "$VENV/bin/psexec.py" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "impacket==0.13.1"
  fi
  getent group "$GROUP" >/dev/null || groupadd "$GROUP"
  getent passwd "$USER_NAME" >/dev/null || useradd -M -N -g "$GROUP" -s /usr/sbin/nologin "$USER_NAME"
  echo "lab: setup done (impacket in $VENV)"
}

write_conf() {
  local profile="$1" conf="$LAB_DIR/smb.conf" extra=""
  case "$profile" in
    clear) extra="server smb encrypt = off" ;;
    default) extra="" ;;
    nt1) extra=$'server smb encrypt = off\n  server min protocol = NT1' ;;
    enc) extra="server smb encrypt = required" ;;
    *) die "unknown profile $profile (clear, default, nt1, enc)" ;;
  esac
  mkdir -p "$LAB_DIR"/{run,lock,state,cache,private,log,ncalrpc} \
           "$LAB_DIR/shares/admin" "$LAB_DIR/shares/c/Users/Public/Documents" "$LAB_DIR/shares/c/Windows"
  echo "quarterly numbers" > "$LAB_DIR/shares/c/Users/Public/Documents/report.txt"
  head -c 65536 /dev/urandom > "$LAB_DIR/shares/c/data.bin"
  printf '[fonts]\r\n[extensions]\r\n' > "$LAB_DIR/shares/c/Windows/win.ini"
  chown -R "$USER_NAME:$GROUP" "$LAB_DIR/shares"
  cat > "$conf" <<EOF
[global]
  workgroup = LAB
  netbios name = VICTIM
  server role = standalone server
  security = user
  map to guest = never
  interfaces = br0
  bind interfaces only = yes
  smb ports = 445 139
  disable netbios = yes
  disable spoolss = yes
  load printers = no
  pid directory = $LAB_DIR/run
  lock directory = $LAB_DIR/lock
  state directory = $LAB_DIR/state
  cache directory = $LAB_DIR/cache
  private dir = $LAB_DIR/private
  ncalrpc dir = $LAB_DIR/ncalrpc
  log file = $LAB_DIR/log/%m.log
  log level = 1
  $extra
[ADMIN\$]
  path = $LAB_DIR/shares/admin
  read only = no
  valid users = $USER_NAME
[C\$]
  path = $LAB_DIR/shares/c
  read only = no
  valid users = $USER_NAME
EOF
  echo "$conf"
}

cmd_up() {
  local profile="${1:-clear}" n="${2:-2}"
  [ "$n" -ge 1 ] && [ "$n" -le 10 ] || die "1 to 10 attackers"
  command -v smbd >/dev/null || die "no smbd: run setup first"
  ip netns list | grep -q "^$VICTIM\b" && die "lab already up (run down first)"
  local conf; conf="$(write_conf "$profile")"
  ip netns add "$VICTIM"
  ip -n "$VICTIM" link set lo up
  ip -n "$VICTIM" link add br0 type bridge
  ip -n "$VICTIM" addr add "$VICTIM_IP/$NET_PREFIX" dev br0
  ip -n "$VICTIM" link set br0 up
  for ((i = 0; i < n; i++)); do
    local ns; ns="$(att_ns "$i")"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip -n "$ns" link add eth0 type veth peer name "v$i" netns "$VICTIM"
    ip -n "$ns" addr add "192.0.2.$((10 + i))/$NET_PREFIX" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$VICTIM" link set "v$i" master br0 up
    # Offloads off on both ends: MTU-sized frames with valid checksums in the capture.
    ip netns exec "$ns" ethtool -K eth0 tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
    ip netns exec "$VICTIM" ethtool -K "v$i" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
  done
  ip netns exec "$VICTIM" ethtool -K br0 tso off gso off gro off tx off >/dev/null 2>&1 || true
  # Account and the group mapping that lets svcctl's full-access opens succeed.
  printf '%s\n%s\n' "$USER_PASS" "$USER_PASS" | smbpasswd -c "$conf" -s -a "$USER_NAME" >/dev/null
  net -s "$conf" groupmap add sid=S-1-5-32-544 unixgroup="$GROUP" type=builtin >/dev/null 2>&1 || true
  ip netns exec "$VICTIM" smbd -s "$conf" -D
  for _ in $(seq 50); do
    ip netns exec "$VICTIM" bash -c "exec 3<>/dev/tcp/$VICTIM_IP/445" 2>/dev/null && break
    sleep 0.1
  done
  echo "lab: up, profile $profile, victim $VICTIM_IP (ns $VICTIM), attackers 192.0.2.10-$((9 + n)) (ns $(att_ns 0)..)"
}

cmd_record() {
  local out="$1" att="$2"; shift 2
  [ "${1:-}" = "--" ] && shift
  [ $# -gt 0 ] || die "record OUT.pcap ATT -- COMMAND..."
  local ns; ns="$(att_ns "$att")"
  ip netns list | grep -q "^$ns\b" || die "no namespace $ns (lab up?)"
  local log="$LAB_DIR/log/tcpdump.$$.log"
  ip netns exec "$VICTIM" tcpdump -i br0 -s 0 -U -w "$out" >"$log" 2>&1 &
  local td=$!
  # tcpdump says "listening on" once the capture is open.
  for _ in $(seq 50); do grep -q "listening on" "$log" && break; sleep 0.1; done
  local cmd="${*//\$IMPACKET/$VENV/bin}"
  set +e
  timeout "$RECORD_TIMEOUT" ip netns exec "$ns" bash -c "cd /tmp && $cmd"
  local rc=$?
  set -e
  sleep 1  # the last FIN/ACKs
  kill -INT "$td"
  wait "$td" || true
  grep -E "packets (captured|dropped)" "$log" || true
  echo "lab: wrote $out (command exit $rc)"
}

cmd_down() {
  # smbd starts samba-dcerpcd on demand (for the RPC pipes); both write pid files here.
  for pidfile in "$LAB_DIR/run/smbd.pid" "$LAB_DIR/run/samba-dcerpcd.pid"; do
    if [ -f "$pidfile" ]; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
      rm -f "$pidfile"
    fi
  done
  for ns in $(ip netns list | awk '{print $1}' | grep '^psxlab-' || true); do
    ip netns del "$ns"
  done
  echo "lab: down"
}

case "${1:-}" in
  setup) shift; cmd_setup "$@" ;;
  up) shift; cmd_up "$@" ;;
  record) shift; [ $# -ge 2 ] || die "record OUT.pcap ATT -- COMMAND..."; cmd_record "$@" ;;
  down) shift; cmd_down "$@" ;;
  *) sed -n '2,20p' "$0"; exit 1 ;;
esac
