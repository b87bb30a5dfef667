#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A scripted HTTPS server on 127.0.0.1 for the HTTP client's tests.

The path chooses the behaviour: /ok echoes the request, /status/N answers N, /big sends a
chunked body of --big bytes, /drip trickles one byte a second, /redirect points at http://.
Each request is appended to --log as one JSON line. The chosen port is written to --portfile.
"""
import argparse
import json
import os
import ssl
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

p = argparse.ArgumentParser()
p.add_argument("--cert", required=True)
p.add_argument("--key", required=True)
p.add_argument("--portfile", required=True)
p.add_argument("--log", required=True)
p.add_argument("--big", type=int, default=10 * 1024 * 1024)
a = p.parse_args()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, ctype="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        raw = self.rfile.read(n)
        with open(a.log, "a") as f:
            f.write(json.dumps({"path": self.path, "headers": dict(self.headers),
                                "body": raw.decode("latin-1")}) + "\n")
        if self.path == "/ok":
            self.reply(200, json.dumps({"code": 200, "len": len(raw),
                                        "body": raw.decode("latin-1")}).encode())
        elif self.path.startswith("/status/"):
            self.reply(int(self.path.split("/")[2]), b'{"code":500,"message":"boom"}')
        elif self.path == "/big":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"x" * 65536
            sent = 0
            try:
                while sent < a.big:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    sent += len(chunk)
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass
        elif self.path == "/drip":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            try:
                for _ in range(100):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(1)
            except OSError:
                pass
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:1/ok")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.reply(404, b"{}")


srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
srv.daemon_threads = True
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(a.cert, a.key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
tmp = a.portfile + ".tmp"
with open(tmp, "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(tmp, a.portfile)
srv.serve_forever()
