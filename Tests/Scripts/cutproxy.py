#!/usr/bin/env python3
"""A loopback TCP proxy that cuts connections: the first CUTS connections that move more than
CUT_AFTER bytes in DIRECTION (up: client->server, down: server->client) are closed abruptly at
that point; every other connection (and every later one) passes through. Connections that move
less (a small status request) do not use up a cut. Prints its port on the first line of stdout.
Usage: cutproxy.py UPSTREAM_PORT CUT_AFTER CUTS up|down. Used by ThinBackupKitTests."""
import socket, sys, threading

upstream_port, cut_after, cuts, direction = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
lock = threading.Lock()
done = [0]

def take_cut():
    with lock:
        if done[0] < cuts:
            done[0] += 1
            return True
        return False

def close_all(peers):
    for s in peers:
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\x01\x00\x00\x00\x00\x00\x00\x00')
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

def pump(src, dst, watched, peers):
    moved, limit = 0, cut_after if watched else None
    try:
        while True:
            want = 65536 if limit is None else min(65536, limit - moved)
            if want <= 0:
                if take_cut():
                    close_all(peers)
                    return
                limit, want = None, 65536
            data = src.recv(want)
            if not data:
                break
            dst.sendall(data)
            moved += len(data)
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    except OSError:
        close_all(peers)

def handle(client):
    try:
        server = socket.create_connection(("127.0.0.1", upstream_port))
    except OSError:
        client.close()
        return
    peers = [client, server]
    up = threading.Thread(target=pump, args=(client, server, direction == "up", peers))
    down = threading.Thread(target=pump, args=(server, client, direction == "down", peers))
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
