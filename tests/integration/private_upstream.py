"""The test upstream again, but behind HTTP basic auth: what a company's private index looks like to devpi."""

import base64
import functools
import http.server

USER, PASSWORD = "deploy", "upstream-secret-for-tests"
EXPECTED = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.headers.get("Authorization") != EXPECTED:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="private index"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()


if __name__ == "__main__":  # in the compose service; the tests import USER and PASSWORD only
    http.server.ThreadingHTTPServer(("0.0.0.0", 8080), functools.partial(Handler, directory="/srv")).serve_forever()
