"""The test upstream again, answering ranges and HEADs as a real index's file host does (python's http.server sends whole files).

uv reads a wheel's metadata by ranges when the index announces no core metadata and a HEAD says
the file takes them: tests/integration/test_first_pages.py reads wheels through the cache so.
"""

import functools
import http.server
import os
import re


class Handler(http.server.SimpleHTTPRequestHandler):
    def end_headers(self):
        self.send_header("Accept-Ranges", "bytes")
        super().end_headers()

    def do_GET(self):
        wanted = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        path = self.translate_path(self.path)
        if not wanted or not os.path.isfile(path) or wanted[1] == wanted[2] == "":
            super().do_GET()
            return
        size = os.path.getsize(path)
        first, last = wanted.groups()
        start, end = (size - int(last), size - 1) if first == "" else (int(first), min(int(last or size - 1), size - 1))
        start = max(start, 0)
        with open(path, "rb") as fh:
            fh.seek(start)
            body = fh.read(end - start + 1)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":  # in the compose service
    http.server.ThreadingHTTPServer(("0.0.0.0", 8080), functools.partial(Handler, directory="/srv")).serve_forever()
