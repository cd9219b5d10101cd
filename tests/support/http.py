"""HTTP to the servers under test: free loopback ports, requests with a token that do
not follow redirects (a refusal is a 302 to the login page, and must be seen as one)."""

import json
import socket
import urllib.error
import urllib.request

_getaddrinfo = socket.getaddrinfo


def _getaddrinfo_localhost(host, *args, **kwargs):
    """*.localhost names on loopback, as RFC 6761 has it and Chromium does by itself (this
    machine's resolver does not): the tests reach the hub's origins (hub.localhost, each
    student's <name>.hub.localhost) by name, as a browser does."""
    if isinstance(host, str) and host.endswith(".localhost"):
        host = "127.0.0.1"
    return _getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _getaddrinfo_localhost


def subdomain(base, label):
    """The origin `label`.hub.localhost:PORT under the hub at `base` (http://hub.localhost:PORT):
    JupyterHub's subdomain_host gives each student's server and each service one
    (deploy/jupyterhub_config.py)."""
    scheme, host = base.split("://", 1)
    return "%s://%s.%s" % (scheme, label, host)


def server_url(base, user):
    """`user`'s server behind the hub at `base`, on its own origin, <user>.hub.localhost."""
    return "%s/user/%s" % (subdomain(base, user), user)


def service_url(base, name):
    """The hub's service `name`, on its own origin, <name>--service.hub.localhost."""
    return "%s/services/%s" % (subdomain(base, name + "--service"), name)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_of(url):
    try:
        return urllib.request.urlopen(url, timeout=5).status
    except urllib.error.HTTPError as e:
        return e.code



class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def redirect_of(url):
    """(status, Location) of a GET of `url`, not followed."""
    try:
        with OPENER.open(urllib.request.Request(url), timeout=60) as r:
            return r.status, r.headers.get("Location")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Location")


def request(url, token=None, method="GET", body=None, timeout=60):
    """(status, parsed JSON or text) of one HTTP request, without following redirects;
    `timeout` seconds for the answer (raise it for requests that run notebooks)."""
    headers = {"Authorization": "token " + token} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with OPENER.open(req, timeout=timeout) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode("utf-8", "replace")

