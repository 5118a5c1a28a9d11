"""A witness on the wire: when did a lab host send an mDNS response holding a given name?

Run inside a lab host (tests/netlab.py), never on a real interface:
    ip netns exec hN python -m tests.wire_witness --needle "Dr Who’s Café Printer"
It captures on --ifname with an AF_PACKET socket whose kernel filter (classic BPF) passes only
the host's *outgoing* frames, so a flood arriving at the host costs it nothing. It prints one
JSON line ``{"event": "started"}`` when the filter is in place, then one line per outgoing IPv4
or IPv6 UDP datagram from port 5353 that is a response (QR set) and holds --needle (UTF-8):
``{"event": "sent", "t": <time.monotonic()>}``. CLOCK_MONOTONIC is one clock for every network
namespace, so the test compares these times with its own. It stops when stdin closes.

Why: inside a flood of the whole mDNS group the responder is flooded too, and whether it ever
heard our question is its business; whether its answer, once sent, reached our caller is ours.
This tells the two apart (tests/test_robust_flood.py).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import select
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
SO_ATTACH_FILTER = 26
PACKET_OUTGOING = 4
SKF_AD_PKTTYPE = 0xFFFFF000 + 4  # SKF_AD_OFF (-0x1000) + SKF_AD_PKTTYPE, as an unsigned k
_INSN = struct.Struct("=HBBI")  # struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }
# ld [pkttype]; jeq #PACKET_OUTGOING, accept, drop; accept: ret #262144; drop: ret #0
_PROGRAM = [
    (0x20, 0, 0, SKF_AD_PKTTYPE),  # BPF_LD | BPF_W | BPF_ABS
    (0x15, 0, 1, PACKET_OUTGOING),  # BPF_JMP | BPF_JEQ | BPF_K
    (0x06, 0, 0, 0x40000),  # BPF_RET | BPF_K: the whole frame
    (0x06, 0, 0, 0),  # BPF_RET | BPF_K: nothing
]


def outgoing_only(sock: socket.socket) -> ctypes.Array[ctypes.c_char]:
    """Attach the filter; returns the program's memory, to be kept alive with the socket."""
    code = b"".join(_INSN.pack(*insn) for insn in _PROGRAM)
    program = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("HL", len(_PROGRAM), ctypes.addressof(program))  # struct sock_fprog
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    return program


def udp_payload(frame: bytes) -> tuple[int, bytes] | None:
    """(source port, payload) of an Ethernet frame carrying UDP over IPv4 or IPv6."""
    if len(frame) < 14:
        return None
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    if ethertype == 0x0800 and len(frame) >= 34:
        ihl = (frame[14] & 0x0F) * 4
        if frame[23] != 17:  # not UDP
            return None
        udp = 14 + ihl
    elif ethertype == 0x86DD and len(frame) >= 62:
        if frame[20] != 17:  # next header; extension headers are not expected here
            return None
        udp = 54
    else:
        return None
    if len(frame) < udp + 8:
        return None
    return struct.unpack_from("!H", frame, udp)[0], frame[udp + 8 :]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ifname", default="eth0")
    parser.add_argument("--needle", required=True, help="text the response must hold (UTF-8)")
    args = parser.parse_args()
    needle = args.needle.encode()
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    program = outgoing_only(sock)
    sock.bind((args.ifname, ETH_P_ALL))
    # Frames queued before the filter was attached may be anything: drop them.
    sock.setblocking(False)
    while True:
        try:
            sock.recv(65535)
        except BlockingIOError:
            break
    print(json.dumps({"event": "started"}), flush=True)
    stdin = sys.stdin.fileno()
    while True:
        ready = select.select([sock, stdin], [], [])[0]
        if stdin in ready and not os.read(stdin, 512):
            break
        if sock in ready:
            while True:
                try:
                    frame = sock.recv(65535)
                except BlockingIOError:
                    break
                got = udp_payload(frame)
                if got is None:
                    continue
                port, payload = got
                if port == 5353 and len(payload) > 2 and payload[2] & 0x80 and needle in payload:
                    print(json.dumps({"event": "sent", "t": time.monotonic()}), flush=True)
    sock.close()
    del program
    return 0


if __name__ == "__main__":
    sys.exit(main())
