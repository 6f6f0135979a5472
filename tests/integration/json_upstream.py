"""A static PEP 691 index whose JSON pages carry PEP 700 upload times (as the official index's do), for tests/integration/test_guards.py.

/simple/NAME/ answers index.json to a client that accepts JSON, else index.html (a project without
index.json: always index.html, as an HTML-only upstream; its files' Last-Modified is their time);
/bare/simple/NAME/ the same JSON pages with API 1.0 and no upload-time or size (what devpi serves by itself).
"""

import functools
import http.server
import json

JSON_PAGE = "application/vnd.pypi.simple.v1+json"


class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        path = self.path.split("?", 1)[0]
        bare = path.startswith("/bare/")
        if bare:
            path = path[len("/bare") :]
        page = None
        if path.startswith("/simple/") and path.endswith("/") and (bare or JSON_PAGE in self.headers.get("Accept", "")):
            try:
                with open(f"{self.directory}{path}index.json", "rb") as fh:
                    page = json.load(fh)
            except FileNotFoundError:
                pass  # an HTML-only project
        if page is not None:
            if bare:
                page["meta"]["api-version"] = "1.0"
                page.pop("versions", None)
                for item in page["files"]:
                    item.pop("upload-time", None)
                    item.pop("size", None)
                    item["url"] = "../" + item["url"]  # one level deeper
            body = json.dumps(page).encode()
            self.send_response(200)
            self.send_header("Content-Type", JSON_PAGE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if bare:
            self.path = self.path[len("/bare") :]
        super().do_GET()


if __name__ == "__main__":  # in the test's container; the test imports nothing of it
    http.server.ThreadingHTTPServer(("0.0.0.0", 8080), functools.partial(Handler, directory="/srv")).serve_forever()
