#!/usr/bin/env python3
"""A counting UDP DNS proxy: listens on LISTEN addresses, forwards each query to UPSTREAM,
and counts queries per listen address per whole second (server-side politeness check).

usage: countproxy.py UPSTREAM_IP:PORT OUTFILE LISTEN_IP:PORT...
On SIGTERM writes OUTFILE: one line per (address, unix second): "addr second count".
"""
import asyncio
import collections
import signal
import sys
import time

upstream = sys.argv[1].rsplit(":", 1)
upstream = (upstream[0], int(upstream[1]))
outfile = sys.argv[2]
listens = sys.argv[3:]
counts = collections.Counter()


class Up(asyncio.DatagramProtocol):
    def __init__(self, down, client):
        self.down, self.client = down, client

    def datagram_received(self, data, addr):
        self.down.sendto(data, self.client)
        self.transport.close()

    def error_received(self, exc):
        self.transport.close()


class Listen(asyncio.DatagramProtocol):
    def __init__(self, name):
        self.name = name

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        counts[(self.name, int(time.time()))] += 1
        loop = asyncio.get_running_loop()

        async def fwd():
            t, _ = await loop.create_datagram_endpoint(lambda: Up(self.transport, addr), remote_addr=upstream)
            t.sendto(data)
            loop.call_later(3, t.close)

        loop.create_task(fwd())


async def main():
    loop = asyncio.get_running_loop()
    for l in listens:
        ip, port = l.rsplit(":", 1)
        await loop.create_datagram_endpoint(lambda l=l: Listen(l), local_addr=(ip, int(port)))
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    loop.add_signal_handler(signal.SIGINT, stop.set_result, None)
    print("ready", flush=True)
    await stop
    with open(outfile, "w") as f:
        for (name, sec), c in sorted(counts.items()):
            f.write("%s %d %d\n" % (name, sec, c))


asyncio.run(main())
