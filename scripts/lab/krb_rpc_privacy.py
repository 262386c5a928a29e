#!/usr/bin/env python3
"""Lab client (issue 16): svcctl over DCE-RPC authenticated with Kerberos (SPNEGO, auth type 9) at
RPC_C_AUTHN_LEVEL_PKT_PRIVACY, so every request and response stub is sealed (RFC 4121 wrap tokens).
Written with impacket's API: the wire is impacket's. The endpoint mapper is asked first whether
svcctl is served over ncacn_ip_tcp; Samba serves it on the named pipe only, so the client then
binds \\PIPE\\svcctl over SMB (itself Kerberos-authenticated). Tickets come from the credential
cache (KRB5CCNAME): kinit, then kvno cifs/ and host/ for the DC.

usage: krb_rpc_privacy.py DC_FQDN DC_IP REALM USER SERVICE_NAME BINARY_PATH [privacy|none]

`none` binds without DCE-RPC authentication (the SMB session is still Kerberos): the cleartext twin
of the same calls. Samba implements no CreateServiceW (nca_s_op_rng_error) and so has no new
service to start or delete: the client then sends RStartServiceW and RDeleteService on the SCM
handle, as a client that ignores errors would, so that their opnums are on the wire too.
"""
import sys

import struct

from impacket.dcerpc.v5 import epm, rpcrt, scmr, transport
from impacket.krb5 import kerberosv5
from impacket.uuid import uuidtup_to_bin

# impacket 0.13.1's MSRPCBind.getData appends the context items again on every call, so the
# alter_context that carries the third Kerberos leg (the client's AP-REP) lists them twice and
# Samba refuses it (auth pad length mismatch, nca_s_proto_error). Encode them once.
_bind_get_data = rpcrt.MSRPCBind.getData


def _bind_get_data_once(self):
    self['ctx_items'] = b''
    return _bind_get_data(self)


rpcrt.MSRPCBind.getData = _bind_get_data_once

# The bind's SPNEGO NegTokenInit, kept for the mechListMIC (below).
_type1 = kerberosv5.getKerberosType1
_blobs = []


def _type1_kept(*args, **kwargs):
    cipher, key, blob = _type1(*args, **kwargs)
    _blobs.append(blob)
    return cipher, key, blob


kerberosv5.getKerberosType1 = _type1_kept


def der(i):
    # (tag, contents, rest) of one DER element
    tag, n = i[0], i[1]
    at = 2
    if n & 0x80:
        k = n & 0x7f
        n = int.from_bytes(i[2:2 + k], 'big')
        at = 2 + k
    return tag, i[at:at + n], i[at + n:]


def el(tag, v):
    n = len(v)
    if n < 0x80:
        return bytes([tag, n]) + v
    b = n.to_bytes((n.bit_length() + 7) // 8, 'big')
    return bytes([tag, 0x80 | len(b)]) + b + v


def mech_types(init_blob):
    # the DER MechTypeList of a GSS-framed SPNEGO NegTokenInit
    _, inner, _ = der(init_blob)          # 60: GSS framing
    _, _, rest = der(inner)               # 06: SPNEGO OID
    _, init, _ = der(rest)                # a0: NegTokenInit
    _, seq, _ = der(init)                 # 30
    _, types, _ = der(seq)                # a0: mechTypes [0]
    return types                          # 30 ...: the MechTypeList as sent


def finish_spnego(dce, iface):
    # Samba's SPNEGO (RFC 4178 with a krb5 mech that supports it) answers the third leg with
    # accept-incomplete and its mechListMIC, and wants the client's before it takes requests;
    # impacket stops after the third leg. The MIC (RFC 4121 GetMIC, initiator sign usage 25,
    # acceptor subkey, sequence 0) goes in one more alter_context; requests then count from 1.
    gss = dce._DCERPC_v5__gss
    key = dce._DCERPC_v5__sessionKey
    hdr = b'\x04\x04' + bytes([0x04]) + b'\xff' * 5 + struct.pack('>Q', 0)
    data = mech_types(_blobs[-1])
    mic = hdr + gss.checkSumProfile.checksum(key, 25, data + hdr)
    token = el(0xa1, el(0x30, el(0xa3, el(0x04, mic))))
    bind = rpcrt.MSRPCBind()
    item = rpcrt.CtxItem()
    item['AbstractSyntax'] = iface
    item['TransferSyntax'] = uuidtup_to_bin(('8a885d04-1ceb-11c9-9fe8-08002b104860', '2.0'))
    item['ContextID'] = 0
    item['TransItems'] = 1
    bind.addCtxItem(item)
    alter = rpcrt.MSRPCHeader()
    alter['type'] = rpcrt.MSRPC_ALTERCTX
    alter['call_id'] = 1
    alter['pduData'] = bind.getData()
    trailer = rpcrt.SEC_TRAILER()
    trailer['auth_type'] = rpcrt.RPC_C_AUTHN_GSS_NEGOTIATE
    trailer['auth_level'] = rpcrt.RPC_C_AUTHN_LEVEL_PKT_PRIVACY
    trailer['auth_ctx_id'] = 79231
    alter['sec_trailer'] = trailer
    alter['auth_data'] = token
    dce._transport.send(alter.get_packet(), forceWriteAndx=1)
    answer = rpcrt.MSRPCHeader(dce._transport.recv())
    print('mechListMIC leg answered with PDU type', answer['type'])
    dce._DCERPC_v5__sequence = 1


fqdn, ip, realm, user, svc_name, bin_path = sys.argv[1:7]
privacy = (sys.argv[7:8] or ['privacy'])[0] == 'privacy'

try:
    tcp = epm.hept_map(ip, scmr.MSRPC_UUID_SCMR, protocol='ncacn_ip_tcp')
except Exception as e:  # Samba: ept_s_not_registered
    print('svcctl over TCP:', e)
    tcp = None
binding = tcp or r'ncacn_np:%s[\pipe\svcctl]' % fqdn
print('binding', binding)
rpc = transport.DCERPCTransportFactory(binding)
rpc.setRemoteHost(ip)
rpc.set_credentials(user, '', realm, '', '', None)
rpc.set_kerberos(True, ip)
dce = rpc.get_dce_rpc()
if privacy:
    dce.set_auth_type(rpcrt.RPC_C_AUTHN_GSS_NEGOTIATE)
    dce.set_auth_level(rpcrt.RPC_C_AUTHN_LEVEL_PKT_PRIVACY)
dce.connect()
dce.bind(scmr.MSRPC_UUID_SCMR)
if privacy:
    finish_spnego(dce, scmr.MSRPC_UUID_SCMR)
scm = scmr.hROpenSCManagerW(dce)['lpScHandle']
created = None
try:
    created = scmr.hRCreateServiceW(dce, scm, svc_name + '\x00', svc_name + '\x00',
                                    lpBinaryPathName=bin_path + '\x00')['lpServiceHandle']
    print('created', svc_name)
except Exception as e:
    print('RCreateServiceW:', e)
service = created
if service is None:
    try:
        service = scmr.hROpenServiceW(dce, scm, svc_name + '\x00')['lpServiceHandle']
    except Exception as e:
        print('ROpenServiceW:', e)
calls = (scmr.hRStartServiceW, scmr.hRDeleteService)
if service is not None:
    calls += (scmr.hRCloseServiceHandle,)
for call in calls:
    try:
        call(dce, service if service is not None else scm)
        print(call.__name__, 'ok')
    except Exception as e:
        print(call.__name__ + ':', e)
scmr.hRCloseServiceHandle(dce, scm)
dce.disconnect()
