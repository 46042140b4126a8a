#!/usr/bin/python3
"""A standard client's view of permessage-deflate (RFC 7692) on birdwatch-fanout.

Starts a real redis-server and birdwatch-fanout on free loopback ports, then, with
Python's `websockets` (its own permessage-deflate, not ours):
  1. offers the extension; the fanout accepts it; a compressed subscribe is understood;
     200 tweets of varied sizes published on Redis arrive byte for byte as published,
     in order, and /metrics shows them sent compressed (wire bytes below message bytes);
  2. offers it with server_max_window_bits=10: the client gets a compressor of its own
     that keeps its context; the tweets arrive byte for byte, in fewer bytes still;
  3. offers server_max_window_bits=10 with server_no_context_takeover, which neither a
     shared batch nor its own compressor can honour: declined, the tweets arrive plain.
Exit 0 on success, 77 (skipped) when the websockets module is missing.
  permessage_deflate_client.py BUILD_DIR
"""
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

try:
    import websockets
    from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
except ImportError:
    print("skipped: python3-websockets is not installed (scripts/install-deps installs it)")
    sys.exit(77)

BUILD = sys.argv[1]
QUERY = "deflate"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, seconds=10):
    end = time.time() + seconds
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def publish(redis_port, channel, payloads):
    """PUBLISH over RESP on a plain socket; waits for every reply."""
    with socket.create_connection(("127.0.0.1", redis_port)) as s:
        out = b""
        for p in payloads:
            parts = [b"PUBLISH", channel.encode(), p.encode()]
            out += b"*3\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in parts)
        s.sendall(out)
        got = b""
        while got.count(b"\r\n") < len(payloads):
            got += s.recv(65536)


def wait_ready(http_port, seconds=10):
    """Until /readyz answers 200: the fanout has subscribed to Redis."""
    end = time.time() + seconds
    while time.time() < end:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{http_port}/readyz", timeout=1).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"the fanout on {http_port} never became ready")


def metric(http_port, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5).read().decode()
    m = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    return float(m.group(1)) if m else None


def payloads_for(qid, count, first_id):
    words = "the quick brown fox jumps over the lazy dog while birds watch".split()
    out = []
    for i in range(count):
        text = " ".join(words[(i + k) % len(words)] for k in range(5 + (i * 37) % 300))
        tweet = {"id": str(first_id + i), "text": f"{QUERY} {i} {text} 日本語 ✓"}
        out.append(json.dumps({"v": 1, "type": "tweet", "qids": [qid], "ingest_us": 0, "tweet": tweet},
                              ensure_ascii=False, separators=(",", ":")))
    return out


async def session(ws_url, redis_port, extensions, first_id, expect_compressed, expect_response=None):
    async with websockets.connect(ws_url, extensions=extensions, max_size=2**22) as ws:
        negotiated = [e.name for e in ws.protocol.extensions] if hasattr(ws, "protocol") else \
            [e.name for e in ws.extensions]
        assert ("permessage-deflate" in negotiated) == expect_compressed, negotiated
        if expect_response:
            answered = ws.response_headers.get("Sec-WebSocket-Extensions", "")
            assert answered == expect_response, answered
        await ws.send(json.dumps({"type": "subscribe", "query": QUERY}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert reply.get("type") == "subscribed", reply
        payloads = payloads_for(reply["qid"], 200, first_id)
        publish(redis_port, "matches", payloads)
        received = []
        while len(received) < len(payloads):
            message = await asyncio.wait_for(ws.recv(), 10)
            for line in message.split("\n"):
                if json.loads(line).get("type") == "tweet":
                    received.append(line)
        assert received == payloads, "tweets differ from what was published"
        return sum(len(p.encode()) for p in payloads)


def main():
    work = tempfile.mkdtemp()
    redis_port, http_port = free_port(), free_port()
    procs = []
    try:
        procs.append(subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", work], stdout=subprocess.DEVNULL))
        wait_port(redis_port)
        env = dict(os.environ, BIRDWATCH_FANOUT_HUB_LIVE_MARKER_TIMEOUT_MS="0")
        procs.append(subprocess.Popen(
            [f"{BUILD}/fanout/birdwatch-fanout", f"--redis.port={redis_port}", f"--http.port={http_port}",
             "--store.kind=none", "--stats.interval_ms=0", "--log.level=warn"], env=env))
        wait_ready(http_port)
        url = f"ws://127.0.0.1:{http_port}/ws"

        message_bytes = asyncio.run(session(url, redis_port, None, 1000, True))
        sent = metric(http_port, "birdwatch_fanout_bytes_sent_total")
        wire = metric(http_port, "birdwatch_fanout_wire_bytes_total")
        print(f"compressed: {message_bytes} tweet bytes; fanout message bytes {sent:.0f}, on the wire {wire:.0f}")
        assert sent >= message_bytes, (sent, message_bytes)
        assert wire < 0.6 * sent, "tweets did not go out compressed"

        own = [ClientPerMessageDeflateFactory(server_max_window_bits=10)]
        asyncio.run(session(url, redis_port, own, 3000, True,
                            "permessage-deflate; server_max_window_bits=10; client_no_context_takeover"))
        wire_own = metric(http_port, "birdwatch_fanout_wire_bytes_total") - wire
        print(f"own compressor (window 10 bits): {message_bytes} tweet bytes in {wire_own:.0f} on the wire")
        assert wire_own < 0.6 * message_bytes, "the small-window client's tweets did not go out compressed"

        wire = metric(http_port, "birdwatch_fanout_wire_bytes_total")
        narrow = [ClientPerMessageDeflateFactory(server_max_window_bits=10, server_no_context_takeover=True)]
        asyncio.run(session(url, redis_port, narrow, 5000, False))
        wire_after = metric(http_port, "birdwatch_fanout_wire_bytes_total")
        assert wire_after - wire > message_bytes, "the declined client's tweets were not sent plain"
        print("declined server_max_window_bits=10 with server_no_context_takeover: tweets arrived uncompressed")
        print("ok")
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(10)
        shutil.rmtree(work, ignore_errors=True)


main()
