"""A tiny invoice web application for the Robot Framework example, served on 127.0.0.1.

Its mode decides what a robot meets: ``ok`` (a Submit button whose click shows *Saved*),
``missing`` (the button is gone: the robot's target is not found) or ``broken`` (the click
shows *Failed*: the robot's postcondition fails). The suite switches modes through
``GET /mode/<mode>``, from each task's setup, the way an outage comes and goes.

Run it alone with ``python examples/robot/app.py [PORT]``.
"""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODES = ("ok", "missing", "broken")

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Invoices</title></head>
<body>
<h1>Invoices</h1>
<form onsubmit="return false">
  <label>Amount <input id="amount" value="120.00"></label>
  {button}
</form>
<p id="status"></p>
</body></html>
"""
_BUTTON = (
    '<button id="submit" type="button" '
    "onclick=\"document.getElementById('status').textContent='{result}'\">Submit</button>"
)


class InvoiceApp(ThreadingHTTPServer):
    """The application: an HTTP server whose ``mode`` the suite can change."""

    daemon_threads = True
    mode = "ok"
    #: How many times the invoice page was served (a refused task never loads it).
    pages = 0

    def page(self) -> str:
        """Return the invoice page as the current mode renders it."""
        if self.mode == "missing":
            return _PAGE.format(button="")
        result = "Saved" if self.mode == "ok" else "Failed"
        return _PAGE.format(button=_BUTTON.format(result=result))


class _Handler(BaseHTTPRequestHandler):
    server: InvoiceApp

    def do_GET(self) -> None:
        if self.path.startswith("/mode/"):
            mode = self.path.removeprefix("/mode/")
            if mode not in MODES:
                self._send(400, f"unknown mode {mode!r}; one of {', '.join(MODES)}")
                return
            self.server.mode = mode
            self._send(200, mode)
        elif self.path in ("/", "/index.html"):
            self.server.pages += 1
            self._send(200, self.server.page(), "text/html; charset=utf-8")
        else:
            self._send(404, "not found")

    def _send(self, code: int, body: str, kind: str = "text/plain; charset=utf-8") -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # quiet: the robot logs
        pass


def serve(port: int = 0) -> tuple[InvoiceApp, str]:
    """Start the application in a background thread; return it and its base URL."""
    app = InvoiceApp(("127.0.0.1", port), _Handler)
    threading.Thread(target=app.serve_forever, name="invoice-app", daemon=True).start()
    host, bound = app.server_address[:2]
    return app, f"http://{host}:{bound}"


if __name__ == "__main__":
    server, url = serve(int(sys.argv[1]) if len(sys.argv) > 1 else 8270)
    print(f"invoice app on {url} (Ctrl-C to stop)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()
