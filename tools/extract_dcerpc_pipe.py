#!/usr/bin/env python3
"""Extract DCE-RPC bytes carried by SMB2 WRITE requests / READ responses (and IOCTL pipe transceive)
from a capture, as fixture lines: `<frame> <c|s> <fileid-hex> <hex bytes>`.
Uses tshark for the TCP payload; parses NBSS + SMB2 itself. Lab captures only (ours)."""
import subprocess, struct, sys

def main(pcap, server_port="445"):
    out = subprocess.run(["tshark", "-r", pcap, "-Y", "smb2 && tcp.len>0", "-T", "fields",
                          "-e", "frame.number", "-e", "tcp.srcport", "-e", "tcp.payload"],
                         capture_output=True, text=True, check=True).stdout
    read_fid = {}  # (client port, message id) -> FileId of the READ/IOCTL request
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or not parts[2]:
            continue
        frame, sport, payload = parts[0], parts[1], bytes.fromhex(parts[2].replace(":", ""))
        d = "s" if sport == server_port else "c"
        dport_key = None
        pos = 0
        while pos + 4 <= len(payload):
            nb_len = int.from_bytes(payload[pos + 1:pos + 4], "big")
            msg = payload[pos + 4:pos + 4 + nb_len]
            pos += 4 + nb_len
            off = 0
            while off + 64 <= len(msg):
                h = msg[off:]
                if h[:4] != b"\xfeSMB":
                    break
                cmd = struct.unpack_from("<H", h, 12)[0]
                flags = struct.unpack_from("<I", h, 16)[0]
                nxt = struct.unpack_from("<I", h, 20)[0]
                resp = flags & 1
                mid = struct.unpack_from("<Q", h, 24)[0]
                key = (parts[1] if d == "c" else "", mid)
                body = h[64:]
                data = None
                fid = b""
                if cmd == 9 and not resp and len(body) >= 48:
                    doff, dlen = struct.unpack_from("<HI", body, 2)
                    fid = body[16:32]
                    data = h[doff:doff + dlen]
                elif cmd == 8 and not resp and len(body) >= 48:
                    read_fid[mid] = body[16:32]
                elif cmd == 8 and resp and len(body) >= 16:
                    fid = read_fid.get(mid, b"")
                    doff = body[2]
                    dlen = struct.unpack_from("<I", body, 4)[0]
                    data = h[doff:doff + dlen]
                elif cmd == 11 and len(body) >= 56:
                    ctl = struct.unpack_from("<I", body, 4)[0]
                    fid = body[8:24]
                    if ctl == 0x0011C017:
                        if not resp:
                            ioff, ilen = struct.unpack_from("<II", body, 24)
                            data = h[ioff:ioff + ilen]
                        else:
                            fid = body[8:24]
                            ooff, olen = struct.unpack_from("<II", body, 32)
                            data = h[ooff:ooff + olen]
                if data:
                    print(frame, d, fid.hex() or "-", data.hex())
                if nxt == 0:
                    break
                off += nxt

if __name__ == "__main__":
    main(*sys.argv[1:])
