#!/usr/bin/env python3
"""Packet-level delay line for Benchmarks/thin_link.sh (this kernel has no netem).

usage: thin_link_delay.py DELAY_MS A0:B0 [A1:B1 ...]

Bridges each pair of interfaces A_i <-> B_i of the network namespace it runs in, in user space:
every Ethernet frame read on one side (AF_PACKET, ETH_P_ALL) is held DELAY_MS and then written
out of the other side, in arrival order, in both directions. So TCP sees the delay on every
packet (its round trip grows by 2 x DELAY_MS), unlike a stream relay, which would add latency
per message but leave the connection's own round trip short. Frames written to an interface
pass through its qdisc (thin_link.sh puts the 2 Mbit/s tbf there); a frame the qdisc refuses
(queue full) is dropped as a router would drop it and counted.

Prints "ready" once every socket is bound; on SIGTERM prints the frames forwarded each way,
the queue drops, and how late frames left against their due time (median / p99 / max), which
is the accuracy of the emulated delay on a loaded machine.
"""
import errno
import heapq
import select
import signal
import socket
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__.split("\n\n")[1])
    delay = float(sys.argv[1]) / 1000.0
    peer = {}      # fd -> (socket to write to, direction label)
    socks = {}
    for pair in sys.argv[2:]:
        a, b = pair.split(":")
        sa = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        sb = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        for s, name in ((sa, a), (sb, b)):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            s.bind((name, 0))
            s.setblocking(False)
            socks[s.fileno()] = s
        peer[sa.fileno()] = (sb, f"{a}->{b}")
        peer[sb.fileno()] = (sa, f"{b}->{a}")
    forwarded = {label: 0 for _, label in peer.values()}
    refused = {label: 0 for _, label in peer.values()}
    lateness = []
    pending = []   # (due, seq, out socket, label, frame)
    seq = 0
    stop = False

    def on_term(*_):
        nonlocal stop
        stop = True
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    print("ready", flush=True)
    fds = list(socks)
    while not stop:
        timeout = None
        if pending:
            timeout = max(0.0, pending[0][0] - time.monotonic())
        try:
            readable, _, _ = select.select(fds, [], [], timeout)
        except InterruptedError:
            continue
        now = time.monotonic()
        for fd in readable:
            s = socks[fd]
            out, label = peer[fd]
            while True:
                try:
                    frame, addr = s.recvfrom(65536)
                except BlockingIOError:
                    break
                if addr[2] == PACKET_OUTGOING:   # our own writes, seen on the way out
                    continue
                heapq.heappush(pending, (now + delay, seq, out, label, frame))
                seq += 1
        now = time.monotonic()
        while pending and pending[0][0] <= now:
            due, _, out, label, frame = heapq.heappop(pending)
            lateness.append(now - due)
            try:
                out.send(frame)
                forwarded[label] += 1
            except OSError as e:
                if e.errno not in (errno.ENOBUFS, errno.EAGAIN):
                    raise
                refused[label] += 1
            now = time.monotonic()
    lateness.sort()
    n = len(lateness)
    if n:
        ms = lambda x: f"{1000 * x:.1f}"
        late = f"median {ms(lateness[n // 2])} ms, p99 {ms(lateness[min(n - 1, n * 99 // 100)])} ms, max {ms(lateness[-1])} ms"
    else:
        late = "no frames"
    for label in sorted(forwarded):
        print(f"{label}: {forwarded[label]} frames forwarded, {refused[label]} refused by the queue", flush=True)
    print(f"frames left late against their due time: {late}", flush=True)


if __name__ == "__main__":
    main()
