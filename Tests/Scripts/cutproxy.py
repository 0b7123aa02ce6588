#!/usr/bin/env python3
"""A loopback TCP proxy that cuts connections: the first CUTS connections are closed after
CUT_AFTER bytes went in DIRECTION (up: client->server, down: server->client). Later connections
pass through. Prints its port on the first line of stdout. Used by ThinBackupKitTests."""
import socket, sys, threading

upstream_port, cut_after, cuts, direction = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
lock = threading.Lock()
count = [0]

def pump(src, dst, limit, peers):
    moved = 0
    try:
        while True:
            want = 65536 if limit is None else min(65536, limit - moved)
            if want <= 0:
                break
            data = src.recv(want)
            if not data:
                break
            dst.sendall(data)
            moved += len(data)
        if limit is not None:
            for s in peers:  # cut both ways, abruptly
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\x01\x00\x00\x00\x00\x00\x00\x00')
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        else:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
    except OSError:
        for s in peers:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

def handle(client):
    with lock:
        n = count[0]
        count[0] += 1
    try:
        server = socket.create_connection(("127.0.0.1", upstream_port))
    except OSError:
        client.close()
        return
    cut = n < cuts
    peers = [client, server]
    up = threading.Thread(target=pump, args=(client, server, cut_after if cut and direction == "up" else None, peers))
    down = threading.Thread(target=pump, args=(server, client, cut_after if cut and direction == "down" else None, peers))
    up.start(); down.start(); up.join(); down.join()
    client.close(); server.close()

listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(16)
print(listener.getsockname()[1], flush=True)
while True:
    c, _ = listener.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
