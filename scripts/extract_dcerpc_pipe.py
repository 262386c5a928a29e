#!/usr/bin/env python3
"""Extract DCE-RPC bytes carried by SMB2 WRITE requests / READ responses (and IOCTL pipe transceive)
from a capture, as fixture lines: `<frame> <c|s> <fileid-hex> <hex bytes>`; with `--tcp`, the
payloads of DCE-RPC-over-TCP streams (`<frame> <c|s> tcp<stream> <hex>`).
Uses tshark for the TCP payload; parses NBSS + SMB2 itself. Lab captures only (ours)."""
import subprocess, struct, sys

def main(pcap, server_port="445"):
    out = subprocess.run(["tshark", "-r", pcap, "-Y", "smb2 && tcp.len>0", "-T", "fields",
                          "-e", "frame.number", "-e", "tcp.srcport", "-e", "tcp.payload",
                          "-e", "tcp.reassembled.data"],
                         capture_output=True, text=True, check=True).stdout
    read_fid = {}  # (client port, message id) -> FileId of the READ/IOCTL request
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or not parts[2]:
            continue
        # A message spread over several segments: tshark reassembles it on the last one.
        whole = parts[3] if len(parts) > 3 and parts[3] else parts[2]
        frame, sport, payload = parts[0], parts[1], bytes.fromhex(whole.replace(":", ""))
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

def main_tcp(pcap):
    """DCE-RPC directly over TCP: every TCP stream in which tshark sees dcerpc and no SMB.
    Lines: `<frame> <c|s> tcp<stream> <hex>`, c = from the side that opened the stream."""
    streams = subprocess.run(["tshark", "-r", pcap, "-Y", "dcerpc && !smb2 && !smb", "-T", "fields",
                              "-e", "tcp.stream"], capture_output=True, text=True, check=True).stdout.split()
    wanted = set(streams)
    out = subprocess.run(["tshark", "-r", pcap, "-Y", "tcp.len>0", "-T", "fields", "-e", "frame.number",
                          "-e", "tcp.stream", "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "tcp.payload"],
                         capture_output=True, text=True, check=True).stdout
    client = {}
    syn = subprocess.run(["tshark", "-r", pcap, "-Y", "tcp.flags.syn==1 && tcp.flags.ack==0", "-T", "fields",
                          "-e", "tcp.stream", "-e", "tcp.srcport"], capture_output=True, text=True).stdout
    for l in syn.splitlines():
        p = l.split("\t")
        if len(p) == 2:
            client[p[0]] = p[1]
    for line in out.splitlines():
        frame, stream, sport, dport, payload = (line.split("\t") + [""] * 5)[:5]
        if stream not in wanted or not payload:
            continue
        c = client.get(stream)
        d = "c" if (sport == c if c else int(dport) < int(sport)) else "s"
        print(frame, d, "tcp" + stream, payload.replace(":", ""))

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--tcp":
        main_tcp(sys.argv[2])
    else:
        main(*sys.argv[1:])
