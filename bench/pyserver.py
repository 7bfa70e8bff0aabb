"""GET /now from Python's standard library: the naive baseline for bench.py.

    python3 pyserver.py PORT

One thread per connection (ThreadingHTTPServer), HTTP/1.1 keep-alive,
no logging. Two settings differ from the defaults, or the comparison would
measure them instead of the server: a listen backlog of 1,024 (the default
of 5 drops connections under load), and TCP_NODELAY (the handler writes the
head and the body separately, and Nagle's algorithm would hold the body
back until the head is acknowledged). It also says `Connection: close` when
it is about to close, as RFC 9112 asks and as nginx does.
"""

import sys
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class NowHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pynow"
    sys_version = ""
    disable_nagle_algorithm = True

    def do_GET(self):
        if self.path.split("?", 1)[0] == "/now":
            status = 200
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            body = (now + "\n").encode()
        else:
            status, body = 404, b"not found\n"
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:  # the client sent Connection: close
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


class Server(ThreadingHTTPServer):
    request_queue_size = 1024


def main():
    port = int(sys.argv[1])
    with Server(("127.0.0.1", port), NowHandler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
