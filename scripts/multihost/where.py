"""Where the ranks run and whom they talk to (scripts/multihost_check.sh, check "placement").

Every rank exchanges a little data with every other rank, then reports its host name, MPI's processor
name and the remote addresses of its established TCP connections (from /proc/self/net/tcp{,6}, matched
against its own socket inodes). Rank 0 prints one JSON list, one entry per rank.
"""

import json
import os
import socket

from mpi4py import MPI


def tcp_peers() -> list[str]:
    mine = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            mine.add(link[8:-1])
    peers = []
    for name in ("tcp", "tcp6"):
        try:
            lines = open(f"/proc/self/net/{name}").read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] != "01" or f[9] not in mine:  # 01 = ESTABLISHED
                continue
            addr = f[2].split(":")[0]
            if len(addr) == 8:
                peers.append(socket.inet_ntop(socket.AF_INET, bytes.fromhex(addr)[::-1]))
            else:
                raw = bytes.fromhex(addr)
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                peers.append(socket.inet_ntop(socket.AF_INET6, raw))
    return sorted(set(peers))


comm = MPI.COMM_WORLD
comm.allgather(os.urandom(4096))  # everyone talks to everyone
comm.alltoall([os.urandom(70000) for _ in range(comm.Get_size())])  # past eager limits too
comm.Barrier()
info = {"rank": comm.Get_rank(), "host": socket.gethostname(), "processor": MPI.Get_processor_name(),
        "peers": tcp_peers()}
everyone = comm.gather(info)
if comm.Get_rank() == 0:
    print(json.dumps(everyone), flush=True)
