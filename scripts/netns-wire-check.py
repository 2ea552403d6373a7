#!/usr/bin/env python3
"""What crossed the wire in scripts/netns-federation-test --own-data: parameters only.

usage: netns-wire-check.py PCAP SERVER_IP PORT MODEL_NPZ ROUNDS CLIENTS SITE_DIR...

Reads the tcpdump capture taken on the server host's interface (Ethernet, IPv4, TCP), rebuilds
each direction of each connection from the sequence numbers, and checks
  1. the bytes match parameters only: P = 4 × (parameters in MODEL_NPZ) bytes per model; clients
     send ROUNDS×CLIENTS FitRes + 1 GetParameters answer (the server has no data to initialise
     from), the server sends ROUNDS×CLIENTS FitIns + ROUNDS×CLIENTS EvaluateIns; what is left over
     per message (framing, names, shapes, config, metrics) is at most 1 KiB, far below one training
     image set;
  2. no training image of any site appears in either direction, neither as its raw bytes nor as
     float32 (pixels/255, what a privatised or converted copy would carry): 64 images per site,
     evenly spaced, each probed with a 96-pixel window from its middle.
Exits 1 with the reason on any mismatch.
"""
import struct
import sys

import numpy as np

PER_MESSAGE_SLACK = 1024


def packets(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        sys.exit(f"FAIL: {path} is not a pcap file")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype != 1:
        sys.exit(f"FAIL: link type {linktype}, expected Ethernet (1)")
    offset = 24
    while offset + 16 <= len(data):
        _, _, incl, orig = struct.unpack(endian + "IIII", data[offset:offset + 16])
        offset += 16
        frame = data[offset:offset + incl]
        offset += incl
        if incl != orig:
            sys.exit(f"FAIL: a packet was truncated in the capture ({incl} of {orig} bytes); capture with -s 0")
        yield frame


def segments(path, port):
    for frame in packets(path):
        if len(frame) < 14 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        if ip[9] != 6:
            continue
        src, dst = ip[12:16], ip[16:20]
        tcp = ip[ihl:total]
        sport, dport, seq = struct.unpack("!HHI", tcp[:8])
        flags = tcp[13]
        header = (tcp[12] >> 4) * 4
        if port not in (sport, dport):
            continue
        yield (src, sport, dst, dport), seq, flags, tcp[header:]


def streams(path, port):
    """Each direction's bytes in sequence order, retransmissions counted once."""
    flows = {}
    for key, seq, flags, payload in segments(path, port):
        flow = flows.setdefault(key, {"isn": None, "parts": {}})
        if flags & 0x02:  # SYN: data starts at seq + 1
            flow["isn"] = (seq + 1) & 0xFFFFFFFF
            continue
        if not payload:
            continue
        if flow["isn"] is None:
            sys.exit("FAIL: a connection's SYN is missing from the capture; start tcpdump before the clients")
        relative = (seq - flow["isn"]) & 0xFFFFFFFF
        previous = flow["parts"].get(relative)
        if previous is None or len(previous) < len(payload):
            flow["parts"][relative] = payload
    result = {}
    for key, flow in flows.items():
        out = bytearray()
        for relative in sorted(flow["parts"]):
            payload = flow["parts"][relative]
            if relative + len(payload) <= len(out):
                continue
            if relative > len(out):
                sys.exit(f"FAIL: {relative - len(out)} bytes missing from a connection in the capture")
            out += payload[len(out) - relative:]
        result[key] = bytes(out)
    return result


def main():
    pcap, server_ip, port, model, rounds, clients = sys.argv[1:7]
    sites = sys.argv[7:]
    port, rounds, clients = int(port), int(rounds), int(clients)
    server = bytes(int(x) for x in server_ip.split("."))
    with np.load(model) as z:
        parameters = sum(z[name].size for name in z.files)
        largest = max(z.files, key=lambda name: z[name].size)
        # The final model went out in the last EvaluateIns: a window of it must be found (control).
        control = z[largest].astype("<f4").tobytes()[4096:4096 + 384]
    p = 4 * parameters
    flows = streams(pcap, port)
    up = sum(len(b) for (src, _, _, _), b in flows.items() if src != server)
    down = sum(len(b) for (src, _, _, _), b in flows.items() if src == server)
    connections = sum(1 for (src, _, _, _) in flows if src != server)
    print(f"wire: {connections} client connections; clients → server {up:,} bytes, server → clients {down:,} bytes")
    print(f"model: {parameters:,} float32 parameters = {p:,} bytes")
    for name, total, messages in (("clients → server", up, rounds * clients + 1),
                                  ("server → clients", down, 2 * rounds * clients)):
        overhead = total - messages * p
        print(f"{name}: {messages} parameter messages × {p:,} = {messages * p:,}; the rest: {overhead:,} bytes "
              f"({overhead / messages:.0f} per message)")
        if not 0 <= overhead <= messages * PER_MESSAGE_SLACK:
            sys.exit(f"FAIL: {name} carried {total:,} bytes, not {messages} parameter messages of {p:,} bytes "
                     f"plus at most {PER_MESSAGE_SLACK} bytes each")
    everything = list(flows.values())
    if not any(control in stream for (src, _, _, _), stream in flows.items() if src == server):
        sys.exit(f"FAIL: control: a window of the final model's {largest} is not found in what the server sent; "
                 "the search would miss data too")
    print(f"control: the final model's {largest} is found in what the server sent")
    checked = 0
    for site in sites:
        with np.load(f"{site}/partition.npz") as z:
            images = z["images"].reshape(len(z["labels"]), -1)
        for image in images[np.linspace(0, len(images) - 1, num=min(64, len(images))).astype(int)]:
            raw = image.tobytes()
            as_float = (image.astype(np.float32) / 255).tobytes()
            # A window from the middle of the image: its edges are often all zero (background).
            middle = len(raw) // 2
            probes = (raw[middle - 48:middle + 48], as_float[4 * (middle - 48):4 * (middle + 48)])
            for probe in probes:
                if probe.count(0) == len(probe):
                    continue
                if any(probe in stream for stream in everything):
                    sys.exit(f"FAIL: bytes of a training image of {site} appear on the wire")
            checked += 1
    print(f"no training image on the wire: {checked} images of {len(sites)} sites searched, raw and as float32")
    print("ok: the wire carried parameters only")


if __name__ == "__main__":
    main()
