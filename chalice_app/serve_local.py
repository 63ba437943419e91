"""``chalice local`` with the gateway responses the deployed API has.

API Gateway answers a path no route matches with 403 "Missing Authentication
Token", and ``chalice local`` copies that. The deployed API overrides it
with a gateway response (``.chalice/gateway-responses.json``, merged in by
``make package``) that answers 404 in the API's error shape; this launcher
gives the local server the same answer. Everything else is ``chalice local``
itself: same options, same stages, same request handling.

    cd chalice_app && python serve_local.py --host 127.0.0.1 --port 8000

Not part of the Lambda package (Chalice deploys app.py and chalicelib/).
"""

from __future__ import annotations

import json
import sys

from chalice import local
from chalice.cli import factory, main


class GatewayResponses(local.ChaliceRequestHandler):
    def _send_error_response(self, error: local.LocalGatewayException) -> None:
        if isinstance(error, local.ForbiddenError) and b"Missing Authentication Token" in (
                error.body or b""):
            path = self.path.split("?")[0]
            body = {"error": {"code": "not_found",
                              "message": f"No route {self.command} {path}; the README "
                                         "lists the API's routes."}}
            self._send_http_response(404, {"Content-Type": "application/json"},
                                     json.dumps(body))
            return
        super()._send_error_response(error)


def _create_local_server(self, app_obj, config, host, port):
    # What chalice.local.create_local_server does, with our handler class.
    local.CustomLocalChalice.__bases__ = (local.LocalChalice, app_obj.__class__)
    app_obj.__class__ = local.CustomLocalChalice
    return local.LocalDevServer(app_obj, config, host, port, handler_cls=GatewayResponses)


def run(argv: list[str]) -> int:
    factory.CLIFactory.create_local_server = _create_local_server
    sys.argv = ["chalice", "local", "--no-autoreload", *argv]
    return main()


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
