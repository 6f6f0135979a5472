"""The cache URLs the pip-config tests write: plain http (which needs a trusted host) and https."""

HTTP_URL = "http://127.0.0.1:3141/root/pypi/+simple/"
HTTPS_URL = "https://cache.example/root/pypi/+simple/"
