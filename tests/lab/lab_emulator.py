"""irf lab emulator: the pinned moto server plus the stand-ins the lab needs.

Started by `irf lab up` and by the test harness, never by hand. It adds to
moto only what AWS does and moto does not, so that irf's production code runs
unchanged against it:

* STS AssumeRole fails with AccessDenied when the role does not exist in the
  target account (moto hands out credentials for any ARN), so a member account
  without the IR role shows the same error as in AWS.
* An optional fixed latency in front of every AWS call (not the /moto-api/
  control plane), so benchmarks can see what concurrency buys.
* With --watch-stdin the process exits when its standard input closes, which
  happens when the process that started it dies, even by SIGKILL: a test run
  never leaves an emulator behind.
"""

import argparse
import os
import sys
import threading
import time

from werkzeug.serving import run_simple

from moto.iam.models import iam_backends
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.sts.exceptions import STSClientError
from moto.sts.models import STSBackend


def _require_existing_role() -> None:
    original = STSBackend.assume_role

    def assume_role(self, region_name, role_session_name, role_arn, *args, **kwargs):
        parts = role_arn.split(":")
        if len(parts) < 6 or not parts[5].startswith("role/"):
            raise STSClientError("ValidationError", f"Invalid role ARN '{role_arn}'")
        partition, account, role_name = parts[1], parts[4], parts[5].split("/")[-1]
        try:
            iam_backends[account][partition].get_role(role_name)
        except Exception:
            raise STSClientError(
                "AccessDenied",
                f"User is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
            )
        return original(self, region_name, role_session_name, role_arn, *args, **kwargs)

    STSBackend.assume_role = assume_role


class _Latency:
    """WSGI middleware that delays every AWS call by a fixed time."""

    def __init__(self, app, seconds: float):
        self.app = app
        self.seconds = seconds

    def __call__(self, environ, start_response):
        if self.seconds > 0 and not environ.get("PATH_INFO", "").startswith("/moto-api"):
            time.sleep(self.seconds)
        return self.app(environ, start_response)


def _exit_when_stdin_closes() -> None:
    def watch() -> None:
        while sys.stdin.buffer.read(4096):
            pass
        os._exit(0)

    threading.Thread(target=watch, name="stdin-watch", daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--watch-stdin", action="store_true")
    args = parser.parse_args()

    # Step Functions SDK integrations call back into the emulator through this.
    os.environ["MOTO_PORT"] = str(args.port)
    if args.watch_stdin:
        _exit_when_stdin_closes()
    _require_existing_role()

    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        _Latency(app, args.latency_ms / 1000.0),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
