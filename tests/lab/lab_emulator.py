"""irf lab emulator: the pinned moto server plus the stand-ins the lab needs.

Started by `irf lab up` and by the test harness, never by hand. It adds to
moto only what AWS does and moto does not, so that irf's production code runs
unchanged against it:

* STS AssumeRole fails with AccessDenied when the role does not exist in the
  target account (moto hands out credentials for any ARN), so a member account
  without the IR role shows the same error as in AWS.
* Security Hub BatchUpdateFindings (moto has no route for it): workflow status and note
  of the named findings are updated in the account's hub.
* SSM DescribeInstanceInformation (moto raises NotImplementedError): the lab plays the
  SSM agent of its instances. An instance with an instance profile is a managed instance,
  Online while it runs and ConnectionLost otherwise; one without is not managed.
* XML responses carry control characters as character references (&#x1b;), as AWS
  sends them; moto writes them raw, which no XML parser accepts, so one hostile tag
  value would hide a whole account-region from every client.
* An optional fixed latency in front of every AWS call (not the /moto-api/
  control plane), so benchmarks can see what concurrency buys.
* With --watch-stdin the process exits when its standard input closes, which
  happens when the process that started it dies, even by SIGKILL: a test run
  never leaves an emulator behind.
"""

import argparse
import datetime
import json
import os
import re
import sys
import threading
import time

from werkzeug.serving import run_simple

from moto.ec2.models import ec2_backends
from moto.iam.models import get_account_id_from, iam_backends
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.sts.exceptions import STSClientError
from moto.securityhub.models import securityhub_backends
from moto.sts.models import STSBackend

_CREDENTIAL = re.compile(r"Credential=([^/]+)/[0-9]+/([^/]+)/([^/]+)/")
# Characters XML 1.0 cannot carry raw (tab and line feed can).
_XML_UNSAFE = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")


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


def _describe_instance_information(account: str, region: str, request: dict) -> dict:
    wanted = set()
    for flt in request.get("Filters", []) + request.get("InstanceInformationFilterList", []):
        if flt.get("Key") in ("InstanceIds", "InstanceIds".lower(), "instanceIds"):
            wanted.update(flt.get("Values", flt.get("valueSet", [])))
    backend = ec2_backends[account][region]
    associations = {
        assoc.instance.id for assoc in getattr(backend, "iam_instance_profile_associations", {}).values()
    }
    items = []
    for reservation in backend.reservations.values():
        for instance in reservation.instances:
            if wanted and instance.id not in wanted:
                continue
            if instance.state == "terminated":
                continue
            if not (instance.iam_instance_profile or instance.id in associations):
                continue
            tags = backend.tags.get(instance.id, {})
            os_name = tags.get("OS", "Amazon Linux 2023")
            windows = os_name.startswith("Windows")
            items.append(
                {
                    "InstanceId": instance.id,
                    "PingStatus": "Online" if instance.state == "running" else "ConnectionLost",
                    "LastPingDateTime": time.time(),
                    "AgentVersion": "3.3.1142.0",
                    "IsLatestVersion": True,
                    "PlatformType": "Windows" if windows else "Linux",
                    "PlatformName": os_name,
                    "ResourceType": "EC2Instance",
                    "IPAddress": instance.private_ip,
                    "ComputerName": tags.get("Name", instance.id),
                }
            )
    return {"InstanceInformationList": items}


def _batch_update_findings(account: str, region: str, request: dict) -> dict:
    hub = securityhub_backends[account][region]
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    processed, unprocessed = [], []
    for identifier in request.get("FindingIdentifiers", []):
        finding = next((f for f in hub.findings if f.id == identifier.get("Id")), None)
        if finding is None:
            unprocessed.append({"FindingIdentifier": identifier, "ErrorCode": "FindingNotFound",
                                "ErrorMessage": "Finding not found"})
            continue
        if "Workflow" in request:
            finding.data["Workflow"] = {"Status": request["Workflow"]["Status"]}
            finding.data["WorkflowState"] = request["Workflow"]["Status"]
        if "Note" in request:
            finding.data["Note"] = {**request["Note"], "UpdatedAt": now}
        finding.data["UpdatedAt"] = now
        processed.append(identifier)
    return {"ProcessedFindings": processed, "UnprocessedFindings": unprocessed}


class _StandIns:
    """WSGI middleware that answers the calls moto lacks, in the caller's account."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        if match:
            access_key, region, service = match.groups()
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            path = environ.get("PATH_INFO", "")
            method = environ.get("REQUEST_METHOD", "")
            handler = None
            if service == "ssm" and target == "AmazonSSM.DescribeInstanceInformation":
                handler, content_type = _describe_instance_information, "application/x-amz-json-1.1"
            elif service == "securityhub" and path == "/findings/batchupdate" and method == "PATCH":
                handler, content_type = _batch_update_findings, "application/json"
            if handler is not None:
                length = int(environ.get("CONTENT_LENGTH") or 0)
                request = json.loads(environ["wsgi.input"].read(length) or b"{}")
                body = json.dumps(handler(get_account_id_from(access_key), region, request)).encode()
                start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body))),
                                          ("x-amzn-RequestId", "irf-lab-" + str(int(time.time() * 1000)))])
                return [body]
        return self._xml_safe(environ, start_response)

    def _xml_safe(self, environ, start_response):
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        chunks = self.app(environ, capture)
        headers = captured.get("headers", [])
        content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
        if "xml" not in content_type:
            start_response(captured["status"], headers)
            return chunks
        body = b"".join(chunks)
        if hasattr(chunks, "close"):
            chunks.close()
        if _XML_UNSAFE.search(body):
            body = _XML_UNSAFE.sub(lambda m: b"&#x%02x;" % m.group()[0], body)
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(body))))
        start_response(captured["status"], headers)
        return [body]


class _Latency:
    """WSGI middleware that delays every AWS call by a fixed time and counts the calls.

    POST /irf-lab/latency?ms=N changes the delay and resets the count; GET /irf-lab/stats
    reports {"calls": N, "latency_ms": N}. Benchmarks seed at full speed, then measure.
    """

    def __init__(self, app, seconds: float):
        self.app = app
        self.seconds = seconds
        self.calls = 0
        self.lock = threading.Lock()

    def _json(self, start_response, value):
        body = json.dumps(value).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/irf-lab/latency":
            query = dict(p.split("=", 1) for p in environ.get("QUERY_STRING", "").split("&") if "=" in p)
            with self.lock:
                self.seconds = float(query.get("ms", "0")) / 1000.0
                self.calls = 0
            return self._json(start_response, {"latency_ms": self.seconds * 1000.0})
        if path == "/irf-lab/stats":
            return self._json(start_response, {"calls": self.calls, "latency_ms": self.seconds * 1000.0})
        if not path.startswith("/moto-api"):
            with self.lock:
                self.calls += 1
            if self.seconds > 0:
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
        _Latency(_StandIns(app), args.latency_ms / 1000.0),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
