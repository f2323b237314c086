#!/usr/bin/env python3
# An HBONE peer not written in sidecar-lab, for the interop test (test/ambient/hbone-interop.test.ts): Python's
# ssl (mutual TLS 1.3, ALPN h2) and the h2 package (Debian's python3-h2), blocking sockets, one tunnel.
#   client HOST PORT CERT KEY CA AUTHORITY BYTES: CONNECT AUTHORITY, send BYTES random bytes then END_STREAM,
#          read until the server's END_STREAM; prints one JSON line (status, sha256 both ways, peer SANs).
#   server CERT KEY CA: listens on 127.0.0.1 (prints {"port": N}), serves one connection: a CONNECT is answered
#          200 and echoed, END_STREAM answered with END_STREAM; prints what it saw as one JSON line, exits.
import hashlib
import json
import os
import socket
import ssl
import sys

import h2.config
import h2.connection
import h2.events


def context(server, cert, key, ca):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    if not server:
        ctx.check_hostname = False  # HBONE checks the URI SAN, not a hostname
    ctx.set_alpn_protocols(["h2"])
    return ctx


def uri_sans(tls):
    return [v for k, v in tls.getpeercert().get("subjectAltName", ()) if k == "URI"]


def send_some(conn, sid, pending):
    """Sends what flow control allows of pending (a bytearray); returns it shortened."""
    while pending:
        n = min(len(pending), conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
        if n <= 0:
            break
        conn.send_data(sid, bytes(pending[:n]))
        del pending[:n]
    return pending


def client(host, port, cert, key, ca, authority, nbytes):
    tls = context(False, cert, key, ca).wrap_socket(socket.create_connection((host, int(port))))
    assert tls.selected_alpn_protocol() == "h2", tls.selected_alpn_protocol()
    peer_ids = uri_sans(tls)
    # h2 4.1 wants :path and :scheme on every request (it knows only the extended CONNECT of RFC 8441); a plain
    # CONNECT (RFC 9113 8.5) has neither, so its header checks are off
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding="utf-8", validate_outbound_headers=False)
    )
    conn.initiate_connection()
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "CONNECT"), (":authority", authority)])
    tls.sendall(conn.data_to_send())
    data = os.urandom(int(nbytes))
    pending, received, status, ended, sent_end, reset = bytearray(data), bytearray(), None, False, False, None
    while not ended and reset is None:
        if status == 200 and not sent_end:
            send_some(conn, sid, pending)
            if not pending:
                conn.end_stream(sid)
                sent_end = True
        tls.sendall(conn.data_to_send())
        chunk = tls.recv(65536)
        if not chunk:
            break
        for ev in conn.receive_data(chunk):
            if isinstance(ev, h2.events.ResponseReceived):
                status = int(dict(ev.headers)[":status"])
                if status != 200:
                    ended = True
            elif isinstance(ev, h2.events.DataReceived):
                received += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                ended = True
            elif isinstance(ev, h2.events.StreamReset):
                reset = ev.error_code
        tls.sendall(conn.data_to_send())
    conn.close_connection()
    tls.sendall(conn.data_to_send())
    tls.close()
    print(json.dumps({
        "status": status, "reset": reset, "sent": len(data), "received": len(received),
        "sentSha256": hashlib.sha256(data).hexdigest(), "receivedSha256": hashlib.sha256(received).hexdigest(),
        "peerIds": peer_ids,
    }), flush=True)


def server(cert, key, ca):
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    print(json.dumps({"port": lsock.getsockname()[1]}), flush=True)
    raw, _ = lsock.accept()
    tls = context(True, cert, key, ca).wrap_socket(raw, server_side=True)
    conn = h2.connection.H2Connection(  # plain CONNECT: see client()
        h2.config.H2Configuration(client_side=False, header_encoding="utf-8", validate_inbound_headers=False)
    )
    conn.initiate_connection()
    tls.sendall(conn.data_to_send())
    saw = {"alpn": tls.selected_alpn_protocol(), "peerIds": uri_sans(tls), "bytes": 0}
    pending, sid, their_end, done = bytearray(), None, False, False
    while not done:
        chunk = tls.recv(65536)
        if not chunk:
            break
        for ev in conn.receive_data(chunk):
            if isinstance(ev, h2.events.RequestReceived):
                headers = dict(ev.headers)
                sid = ev.stream_id
                saw.update(method=headers.get(":method"), authority=headers.get(":authority"), headers=headers)
                conn.send_headers(sid, [(":status", "200" if headers.get(":method") == "CONNECT" else "400")])
            elif isinstance(ev, h2.events.DataReceived):
                pending += ev.data
                saw["bytes"] += len(ev.data)
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                their_end = True
            elif isinstance(ev, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
                saw["reset"] = True
                done = True
        if sid is not None and not done:
            send_some(conn, sid, pending)
            if their_end and not pending:
                conn.end_stream(sid)
                done = True
        tls.sendall(conn.data_to_send())
    print(json.dumps(saw), flush=True)
    conn.close_connection()
    tls.sendall(conn.data_to_send())
    tls.close()


if __name__ == "__main__":
    if sys.argv[1] == "client":
        client(*sys.argv[2:9])
    elif sys.argv[1] == "server":
        server(*sys.argv[2:5])
    else:
        sys.exit("usage: hbone-peer.py client HOST PORT CERT KEY CA AUTHORITY BYTES | server CERT KEY CA")
