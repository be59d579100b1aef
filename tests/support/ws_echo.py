#!/usr/bin/python3
"""A real WebSocket server for the integration tests (Debian's python3-websockets).

On every connection it first sends one text message, JSON:
  {"path": ..., "headers": [[name, value], ...], "requests": N}
with the upgrade request's path and headers exactly as received, and N the number of HTTP
requests (upgrades or not) that have reached this server so far, this one included. Then it
echoes every message back unchanged (text as text, binary as binary), except the text
message "push N SECONDS", which makes it send N text messages "push I", SECONDS apart,
without waiting for the client. Prints "ready" when listening; stops on SIGTERM.
"""
import argparse
import asyncio
import json
import signal

import websockets

requests = 0


async def count(path, headers):
    global requests
    requests += 1
    return None  # carry on with the handshake


def utf8(v):
    return v.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


async def handler(ws):
    hello = {
        "path": ws.path,
        # Header bytes arrive as latin-1 with surrogate escapes; show UTF-8 as UTF-8.
        "headers": [[k, utf8(v)] for k, v in ws.request_headers.raw_items()],
        "requests": requests,
    }
    await ws.send(json.dumps(hello))
    async for msg in ws:
        if isinstance(msg, str) and msg.startswith("push "):
            _, n, secs = msg.split()
            for i in range(int(n)):
                await asyncio.sleep(float(secs))
                await ws.send(f"push {i}")
        else:
            await ws.send(msg)


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    a = p.parse_args()
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with websockets.serve(
        handler,
        "127.0.0.1",
        a.port,
        process_request=count,
        compression=None,
        ping_interval=None,
        max_size=16 * 1024 * 1024,
    ):
        print("ready", flush=True)
        await stop


if __name__ == "__main__":
    asyncio.run(main())
