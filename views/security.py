"""What every response says about itself (issue 15, item 9).

- Content-Security-Policy on every page: scripts only from this site and inline ones carrying the
  request's nonce (Flask-Admin's templates print it through `csp_nonce_generator`, ours through
  `csp_nonce()`); no plugins, no <base>, forms post only here, no framing.  Inline styles stay
  allowed (Flask-Admin and select2 set style attributes); an event-handler attribute
  (onclick="…") or a javascript: URL does not run, so the project's templates have none
  (tests/test_security_headers.py reads them all).
- X-Frame-Options DENY (older browsers) and frame-ancestors 'none'; nosniff; same-origin referrers.
- No Server banner: neither Werkzeug's development server ("Werkzeug/3.1 Python/3.11") nor
  gunicorn ("gunicorn") says what it is.
"""

from __future__ import annotations

import secrets
import sys

from flask import Flask, g

CSP = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def csp_nonce() -> str:
    """This request's nonce (made on first use): the attribute value of every inline <script>."""
    nonce = g.get("csp_nonce")
    if nonce is None:
        nonce = g.csp_nonce = secrets.token_urlsafe(18)
    return nonce


def init_security(app: Flask) -> None:
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    hide_server_banner()

    @app.after_request
    def _headers(response):
        headers = response.headers
        if response.mimetype == "text/html":
            headers["Content-Security-Policy"] = CSP.format(nonce=csp_nonce())
        headers["X-Frame-Options"] = "DENY"
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "same-origin"
        headers.pop("Server", None)
        return response


def hide_server_banner() -> None:
    """Werkzeug's request handler and gunicorn's response write their Server header themselves,
    outside the app: leave it out of both (tests/test_security_headers.py runs each server)."""
    from werkzeug.serving import WSGIRequestHandler

    if not getattr(WSGIRequestHandler, "_huzhu_no_banner", False):

        def send_response(self, code, message=None):  # http.server's, without its Server line
            self.log_request(code)
            self.send_response_only(code, message)
            self.send_header("Date", self.date_time_string())

        WSGIRequestHandler.send_response = send_response
        WSGIRequestHandler._huzhu_no_banner = True
    gunicorn_wsgi = sys.modules.get("gunicorn.http.wsgi")  # only when gunicorn serves this process
    if gunicorn_wsgi is not None and not getattr(gunicorn_wsgi.Response, "_huzhu_no_banner", False):
        default_headers = gunicorn_wsgi.Response.default_headers

        def without_banner(self):
            return [h for h in default_headers(self) if not h.lower().startswith("server:")]

        gunicorn_wsgi.Response.default_headers = without_banner
        gunicorn_wsgi.Response._huzhu_no_banner = True
