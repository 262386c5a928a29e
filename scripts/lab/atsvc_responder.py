#!/usr/bin/env python3
"""A minimal MS-TSCH (Task Scheduler, ITaskSchedulerService) server behind Samba's smbd, for the
Kerberos lab only (scripts/lab/lab-kerberos.sh tsch-up). Never part of CI.

Samba has no Task Scheduler server, so impacket's atexec.py stops at the CREATE of \\pipe\\atsvc.
smbd hands every named pipe it opens to a unix socket `<ncalrpc dir>/np/<pipe>` (Samba 4.17,
source3/rpc_client/local_np.c) with the tstream_npa protocol: an NDR `named_pipe_auth_req`
(big-endian length, "NPAM", level 7) from smbd, a `named_pipe_auth_rep` back, then the raw pipe
bytes (in message mode each message framed by its 2-octet length). This script listens at np/atsvc and answers what atexec.py sends, so that impacket's
unmodified client runs its real exchange on the wire:

  bind (auth type 9, SPNEGO/Kerberos, packet privacy): the AP-REQ's service ticket is opened with
  the DC account's keytab; bind_ack carries a DCE-style AP-REP with an acceptor subkey;
  alter_context (the client's AP-REP) -> alter_context_resp; then sealed requests (RFC 4121 wrap
  tokens under the acceptor subkey):
  SchRpcRegisterTask (1) -> ok, SchRpcRun (12) -> ok, SchRpcGetLastRunInfo (16) -> a non-zero run
  time, SchRpcDelete (13) -> ok; anything else -> fault nca_s_op_rng_error.

It also writes the output file the registered task would have written (the task's `/C <command> >
%windir%\\Temp\\<name>.tmp` argument) into ADMIN$\\Temp, so atexec.py reads it and finishes. No
command is run. Usage: atsvc_responder.py SOCKET_PATH KEYTAB ADMIN_SHARE_DIR (impacket's python).
"""
import os
import re
import socket
import struct
import sys
import threading
import traceback
import datetime

from pyasn1.codec.der import decoder, encoder
from impacket.dcerpc.v5 import tsch
from impacket.dcerpc.v5.dtypes import NULL
from impacket.krb5 import constants
from impacket.krb5.asn1 import AP_REQ, AP_REP, Authenticator, EncAPRepPart, EncTicketPart
from impacket.krb5.crypto import Key, _enctype_table, get_random_bytes
from impacket.krb5.keytab import Keytab
from impacket.spnego import SPNEGO_NegTokenInit, SPNEGO_NegTokenResp, TypesMech

KRB5_OID_DER = bytes.fromhex("06092a864886f712010202")
NDR_SYNTAX = bytes.fromhex("045d888aeb1cc9119fe808002b104860") + struct.pack("<I", 2)
KG_USAGE_ACCEPTOR_SEAL = 22
KG_USAGE_INITIATOR_SEAL = 24
FAULT_OP_RNG_ERROR = 0x1C010002
PIPE = "\\PIPE\\atsvc"
DEBUG = os.environ.get("ATSVC_DEBUG") == "1"  # one line per PDU on stderr


def recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def npa_handshake(conn):
    """Reads smbd's named_pipe_auth_req and accepts it (named_pipe_auth_rep level 7)."""
    (length,) = struct.unpack(">I", recv_exact(conn, 4))
    req = recv_exact(conn, length)
    if req[:4] != b"NPAM":
        raise ValueError("not a named_pipe_auth_req")
    (level,) = struct.unpack("<I", req[4:8])
    # level, union discriminant, info: file_type (message-mode pipe), device_state (as Samba's
    # own servers), 4 pad octets (the hyper is 8-aligned), allocation_size; then NTSTATUS ok.
    body = b"NPAM" + struct.pack("<IIHH4xQI", level, level, 2, 0x05FF, 4096, 0)
    conn.sendall(struct.pack(">I", len(body)) + body)


class MessagePipe:
    """The pipe bytes after the handshake. In message mode (the file_type we answered) tstream_npa
    frames every message with its length (2 octets, little-endian); a PDU may span messages."""

    def __init__(self, conn):
        self.conn = conn
        self.buf = b""

    def read_pdu(self):
        while len(self.buf) < 10 or len(self.buf) < struct.unpack("<H", self.buf[8:10])[0]:
            (n,) = struct.unpack("<H", recv_exact(self.conn, 2))
            self.buf += recv_exact(self.conn, n)
        (frag_len,) = struct.unpack("<H", self.buf[8:10])
        p, self.buf = self.buf[:frag_len], self.buf[frag_len:]
        return p

    def send(self, p):
        self.conn.sendall(struct.pack("<H", len(p)) + p)


def pdu(ptype, call_id, body, auth=b"", flags=0x03):
    """A connection-oriented PDU; `auth` is the sec_trailer plus the auth value."""
    auth_len = len(auth) - 8 if auth else 0
    frag_len = 16 + len(body) + len(auth)
    head = struct.pack("<BBBB4sHHI", 5, 0, ptype, flags, b"\x10\x00\x00\x00", frag_len, auth_len, call_id)
    return head + body + auth


def split_auth(p):
    auth_len = struct.unpack("<H", p[10:12])[0]
    if not auth_len:
        return p[16:], None, b""
    trailer = p[len(p) - auth_len - 8 : len(p) - auth_len]
    return p[16 : len(p) - auth_len - 8], trailer, p[len(p) - auth_len :]


class Session:
    def __init__(self, keytab, admin_dir):
        self.keytab = keytab
        self.admin_dir = admin_dir
        self.subkey = None
        self.cipher = None
        self.ctx_id = 0
        self.auth_ctx = 0
        self.send_seq = 0
        self.outputs = {}

    # --- Kerberos acceptor (DCE style, RFC 4121 with the acceptor subkey) ---------------------

    def accept_ap_req(self, token):
        mech = SPNEGO_NegTokenInit(token)["MechToken"]
        at = mech.find(KRB5_OID_DER) + len(KRB5_OID_DER) + 2  # GSS framing, TOK_ID 01 00
        ap_req = decoder.decode(mech[at:], asn1Spec=AP_REQ())[0]
        etype = int(ap_req["ticket"]["enc-part"]["etype"])
        keyblock = self.keytab.getKey("DC1$", etype)
        service_key = Key(etype, bytes(keyblock["keyvalue"]["data"]))
        cipher = _enctype_table[etype]
        plain = cipher.decrypt(service_key, 2, bytes(ap_req["ticket"]["enc-part"]["cipher"]))
        enc_ticket = decoder.decode(plain, asn1Spec=EncTicketPart())[0]
        session_key = Key(int(enc_ticket["key"]["keytype"]), bytes(enc_ticket["key"]["keyvalue"]))
        cipher = _enctype_table[session_key.enctype]
        plain = cipher.decrypt(session_key, 11, bytes(ap_req["authenticator"]["cipher"]))
        auth = decoder.decode(plain, asn1Spec=Authenticator())[0]
        self.subkey = Key(session_key.enctype, get_random_bytes(len(session_key.contents)))
        self.cipher = cipher
        rep_part = EncAPRepPart()
        rep_part["ctime"] = str(auth["ctime"])
        rep_part["cusec"] = int(auth["cusec"])
        rep_part["subkey"]["keytype"] = self.subkey.enctype
        rep_part["subkey"]["keyvalue"] = self.subkey.contents
        rep_part["seq-number"] = int.from_bytes(get_random_bytes(4), "big") & 0x7FFFFFFF
        ap_rep = AP_REP()
        ap_rep["pvno"] = 5
        ap_rep["msg-type"] = int(constants.ApplicationTagNumbers.AP_REP.value)
        ap_rep["enc-part"]["etype"] = session_key.enctype
        ap_rep["enc-part"]["cipher"] = cipher.encrypt(session_key, 12, encoder.encode(rep_part), None)
        resp = SPNEGO_NegTokenResp()
        resp["NegState"] = b"\x01"  # accept-incomplete: the client's AP-REP follows
        resp["SupportedMech"] = TypesMech["MS KRB5 - Microsoft Kerberos 5"]
        resp["ResponseToken"] = encoder.encode(ap_rep)
        return resp.getData()

    def unseal(self, stub, trailer, auth_value):
        """A sealed request stub: RFC 4121 wrap token, header in the auth value."""
        ec, rrc = struct.unpack(">HH", auth_value[4:8])
        rotated = auth_value[16:] + stub
        n = (rrc + ec) % len(rotated)
        plain = self.cipher.decrypt(self.subkey, KG_USAGE_INITIATOR_SEAL, rotated[n:] + rotated[:n])
        plain = plain[: -(ec + 16)]
        pad = trailer[2]
        return plain[: len(plain) - pad] if pad else plain

    def seal(self, stub):
        """Seals a response stub as the acceptor: (sealed stub, sec_trailer + wrap token)."""
        pad = (4 - len(stub) % 4) % 4
        stub += b"\xbb" * pad
        ec = (16 - len(stub) % 16) & 15
        header = struct.pack(">HBBHH", 0x0504, 0x07, 0xFF, ec, 0) + struct.pack(">Q", self.send_seq)
        self.send_seq += 1
        ct = self.cipher.encrypt(self.subkey, KG_USAGE_ACCEPTOR_SEAL, stub + b"\xff" * ec + header, None)
        rrc = 28
        k = (rrc + ec) % len(ct)
        ct = ct[len(ct) - k :] + ct[: len(ct) - k]
        header = header[:6] + struct.pack(">H", rrc) + header[8:]
        cut = 16 + rrc + ec
        trailer = struct.pack("<BBBBI", 9, 6, pad, 0, self.auth_ctx)
        return ct[cut:], trailer + header + ct[:cut]

    # --- DCE-RPC ------------------------------------------------------------------------------

    def bind_ack(self, p, ptype):
        body, trailer, auth_value = split_auth(p)
        call_id = struct.unpack("<I", p[12:16])[0]
        self.auth_ctx = struct.unpack("<I", trailer[4:8])[0] if trailer else 0
        n_ctx = body[8]
        results = b""
        at = 12
        for _ in range(n_ctx):
            n_ts = body[at + 2]
            results += struct.pack("<HH", 0, 0) + NDR_SYNTAX
            at += 4 + 20 + 20 * n_ts
        port = (PIPE.encode() + b"\x00") if ptype == 11 else b""
        ack = struct.pack("<HHI", 4280, 4280, 0x12345) + struct.pack("<H", len(port)) + port
        ack += b"\x00" * ((4 - len(ack) % 4) % 4)
        ack += struct.pack("<BBH", n_ctx, 0, 0) + results
        if ptype == 11 and auth_value:
            token = self.accept_ap_req(auth_value)
            pad = (4 - (16 + len(ack)) % 4) % 4
            ack += b"\x00" * pad
            auth = struct.pack("<BBBBI", 9, 6, pad, 0, self.auth_ctx) + token
            return pdu(12, call_id, ack, auth)
        # alter_context carries the client's AP-REP (mutual authentication): nothing to answer.
        return pdu(12 if ptype == 11 else 15, call_id, ack)

    def request(self, p):
        body, trailer, auth_value = split_auth(p)
        call_id = struct.unpack("<I", p[12:16])[0]
        ctx_id, opnum = struct.unpack("<HH", body[4:8])
        stub = body[8:]
        if auth_value:
            stub = self.unseal(stub, trailer, auth_value)
        answer = self.operation(opnum, stub)
        if answer is None:
            fault = struct.pack("<IHBBI", 0, ctx_id, 0, 0, FAULT_OP_RNG_ERROR) + b"\x00" * 4
            return pdu(3, call_id, fault)
        sealed, auth = self.seal(answer) if auth_value else (answer, b"")
        head = struct.pack("<IHBB", len(answer), ctx_id, 0, 0)
        return pdu(2, call_id, head + sealed, auth)

    def operation(self, opnum, stub):
        if opnum == tsch.SchRpcRegisterTask.opnum:
            req = tsch.SchRpcRegisterTask(stub)
            path = req["path"].rstrip("\x00")
            xml = req["xml"].rstrip("\x00")
            m = re.search(r"<Arguments>/C (.*) &gt; %windir%\\Temp\\([^ ]+) 2&gt;&amp;1</Arguments>", xml)
            if m:
                self.outputs[path] = m.group(2)
            resp = tsch.SchRpcRegisterTaskResponse()
            resp["pActualPath"] = path + "\x00"
            resp["pErrorInfo"] = NULL
            resp["ErrorCode"] = 0
            return resp.getData()
        if opnum == tsch.SchRpcRun.opnum:
            req = tsch.SchRpcRun(stub)
            self.write_output(req["path"].rstrip("\x00"))
            resp = tsch.SchRpcRunResponse()
            resp["pGuid"] = get_random_bytes(16)
            resp["ErrorCode"] = 0
            return resp.getData()
        if opnum == tsch.SchRpcGetLastRunInfo.opnum:
            now = datetime.datetime.now(datetime.timezone.utc)
            resp = tsch.SchRpcGetLastRunInfoResponse()
            t = resp["pLastRuntime"]
            t["wYear"], t["wMonth"], t["wDay"] = now.year, now.month, now.day
            t["wDayOfWeek"] = (now.weekday() + 1) % 7
            t["wHour"], t["wMinute"], t["wSecond"], t["wMilliseconds"] = now.hour, now.minute, now.second, 0
            resp["pLastReturnCode"] = 0
            resp["ErrorCode"] = 0
            return resp.getData()
        if opnum == tsch.SchRpcDelete.opnum:
            resp = tsch.SchRpcDeleteResponse()
            resp["ErrorCode"] = 0
            return resp.getData()
        return None

    def write_output(self, path):
        name = self.outputs.get(path)
        if not name:
            return
        temp = os.path.join(self.admin_dir, "Temp")
        os.makedirs(temp, exist_ok=True)
        os.chmod(temp, 0o777)
        out = os.path.join(temp, os.path.basename(name))
        with open(out, "w") as f:
            f.write("psxlab\\administrator\r\n")
        os.chmod(out, 0o666)


def serve(conn, keytab, admin_dir):
    s = Session(keytab, admin_dir)
    try:
        npa_handshake(conn)
        pipe = MessagePipe(conn)
        while True:
            p = pipe.read_pdu()
            ptype = p[2]
            if DEBUG:
                print("atsvc_responder: PDU type %d, %d bytes" % (ptype, len(p)), file=sys.stderr, flush=True)
            if ptype in (11, 14):  # bind, alter_context
                pipe.send(s.bind_ack(p, ptype))
            elif ptype == 0:  # request
                pipe.send(s.request(p))
            else:
                pass  # auth3, orphaned, co_cancel: no answer
    except EOFError:
        pass
    except Exception as e:  # a lab tool: say what broke, keep serving other connections
        print("atsvc_responder: %r" % e, file=sys.stderr, flush=True)
        traceback.print_exc()
    finally:
        conn.close()


def main():
    path, keytab_path, admin_dir = sys.argv[1:4]
    keytab = Keytab.loadFile(keytab_path)
    if os.path.exists(path):
        os.unlink(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    os.chmod(path, 0o777)
    srv.listen(8)
    print("atsvc_responder: listening on %s" % path, flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn, keytab, admin_dir), daemon=True).start()


if __name__ == "__main__":
    main()
