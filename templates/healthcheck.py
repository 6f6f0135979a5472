"""The image's health check: devpi's /+api through the cache's own port, over HTTPS when {{ env_tls }} says so.

With HTTPS, the certificate in the volume is the one trusted (whatever names it carries):
the check asks this container, at 127.0.0.1. /+api stays open with --read-auth.
"""

import os
import ssl
import urllib.request

from frontlog import HEALTH_CHECK_AGENT  # beside this file in the image

context = None
scheme = "http"
if os.environ.get("{{ env_tls }}") and os.environ.get("{{ env_front }}", "1") == "1":
    scheme = "https"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.load_verify_locations("{{ tls_cert }}")
request = urllib.request.Request(
    f"{scheme}://127.0.0.1:{{ container_port }}/+api", headers={"Accept": "application/json", "User-Agent": HEALTH_CHECK_AGENT}
)
urllib.request.urlopen(request, timeout=4, context=context)
