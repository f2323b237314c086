# A test app for the fault suite: a download client on plain recv(2), no event loop in between. (libuv, under
# every Node client, reports EOF when a reset arrives while bytes are still queued, so a Node client cannot
# tell a reset from a clean end reliably; recv(2) returns the queued bytes and then ECONNRESET.)
# usage: raw-download.py HOST PORT GREETING PROGRESS_AT [PAUSE_MS]   one JSON line {event:'progress'} once past
# PROGRESS_AT bytes, then {event:'result', received, error} ('error' null for a clean end); PAUSE_MS after
# every recv makes a slow reader.
import json, socket, sys, time

host, port, greeting, progress_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
pause = float(sys.argv[5]) / 1000 if len(sys.argv) > 5 else 0
family = socket.AF_INET6 if ':' in host else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.settimeout(60)
received, told, error = 0, False, None
try:
    s.connect((host, port))
    if greeting:
        s.sendall(b'a' * greeting)
    while True:
        chunk = s.recv(1 << 16)
        if not chunk:
            break
        received += len(chunk)
        if not told and received >= progress_at:
            told = True
            print(json.dumps({'event': 'progress', 'received': received}, separators=(',', ':')), flush=True)
        if pause:
            time.sleep(pause)
except ConnectionResetError:
    error = 'ECONNRESET'
except OSError as e:
    error = type(e).__name__
print(json.dumps({'event': 'result', 'received': received, 'error': error}, separators=(',', ':')), flush=True)
