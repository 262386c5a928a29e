#!/usr/bin/env bash
# Proves that build.rs links the `live` feature on a machine that has the libpcap runtime
# (libpcap.so.0.8) but not libpcap-dev, on a machine that does have libpcap-dev installed:
# in a private mount namespace, an overlay over the multiarch lib dir hides libpcap.so,
# libpcap.a and libpcap.pc (whiteouts), then a throwaway crate with this repo's build.rs and the
# pcap crate is built from scratch (its own build script included), run, and checked for linking
# the runtime library. Nothing outside the namespace changes. Needs root; uses the cargo cache
# (runs offline once `cargo fetch` has been done in the repo).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
triple_dir="/usr/lib/$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)"
[ "$(id -u)" = 0 ] || { echo "check-libpcap-fallback: needs root (mount namespace)" >&2; exit 1; }
ls "$triple_dir"/libpcap.so.0.8 >/dev/null || { echo "no libpcap runtime in $triple_dir" >&2; exit 1; }

work="$(mktemp -d /tmp/pcap-fallback.XXXXXX)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/crate/src" "$work/upper/pkgconfig" "$work/work" "$work/merged"
cp "$repo/build.rs" "$work/crate/build.rs"
pcap_req="$(sed -n 's/^pcap = { version = "\([^"]*\)".*/\1/p' "$repo/Cargo.toml")"
cat > "$work/crate/Cargo.toml" <<EOF
[package]
name = "pcap-fallback-check"
version = "0.0.0"
edition = "2021"
[dependencies]
pcap = { version = "$pcap_req", optional = true }
[features]
default = ["live"]
live = ["dep:pcap"]
EOF
cat > "$work/crate/src/main.rs" <<'EOF'
fn main() {
    // Linking and calling into libpcap is the point; the device list needs no privileges.
    let n = pcap::Device::list().map(|d| d.len()).unwrap_or(0);
    println!("linked libpcap, {n} devices");
}
EOF
cp "$repo/Cargo.lock" "$work/crate/Cargo.lock" 2>/dev/null || true

unshare -m --propagation private bash -euo pipefail -c '
  triple_dir="$1"; work="$2"
  for f in libpcap.so libpcap.a pkgconfig/libpcap.pc; do mknod "$work/upper/$f" c 0 0; done
  mount -t overlay overlay -o "lowerdir=$triple_dir,upperdir=$work/upper,workdir=$work/work" "$triple_dir"
  if ls "$triple_dir/libpcap.so" >/dev/null 2>&1 || pkg-config --exists libpcap; then
    echo "FAIL: libpcap-dev still visible" >&2; exit 1
  fi
  echo "hidden: libpcap.so, libpcap.a, libpcap.pc (runtime: $(ls "$triple_dir" | grep "^libpcap.so" | tr "\n" " "))"
  cd "$work/crate"
  CARGO_TARGET_DIR="$work/target" cargo build --offline -q 2>&1 | grep -v "^$" || true
  bin="$work/target/debug/pcap-fallback-check"
  [ -x "$bin" ] || { echo "FAIL: build did not produce a binary" >&2; exit 1; }
  link="$(find "$work/target/debug/build" -path "*pcap-link/libpcap.so" -print -quit)"
  [ -n "$link" ] || { echo "FAIL: build.rs made no OUT_DIR symlink" >&2; exit 1; }
  echo "symlink: $link -> $(readlink "$link")"
  "$bin"
  # Whole output first: grep -q closing the pipe early would fail ldd under pipefail.
  deps="$(ldd "$bin")"
  case "$deps" in *libpcap.so.0.8*) ;; *) echo "FAIL: not linked against libpcap.so.0.8" >&2; exit 1 ;; esac
  echo "OK: built and linked against $(grep libpcap <<<"$deps" | awk "{print \$1, \$2, \$3}") without libpcap-dev"
' _ "$triple_dir" "$work"
