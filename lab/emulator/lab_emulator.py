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
  SSM agent of its instances. An instance with an instance profile is a managed instance
  (once its agent registers, below), Online while it runs and ConnectionLost otherwise.
* SSM agent registration takes time: in AWS the agent finds an instance's new credentials
  only after its back-off, and until then the instance is not managed (SendCommand answers
  InvalidInstanceId, StartSession TargetNotConnected, DescribeInstanceInformation omits it).
  moto has no agent; here an instance is managed --registration-seconds (default 8) after it
  got its profile: after its association (AssociateIamInstanceProfile, timed here; a
  replacement keeps the time) or, launched with one, after its launch.
* XML responses carry control characters as character references (&#x1b;), as AWS
  sends them; moto writes them raw, which no XML parser accepts, so one hostile tag
  value would hide a whole account-region from every client.
* EBS direct APIs for the snapshots of lab volumes (moto keeps blocks only for snapshots
  made through EBS StartSnapshot, and fails with a 500 on the others): the lab registers
  the raw image of each volume (POST /irf-lab/volume-images {"volumes": {"vol-..": path}}),
  and ListSnapshotBlocks / GetSnapshotBlock of a snapshot of such a volume answer from the
  image in AWS's 512 KiB blocks, listing only the blocks that hold data (the images are
  sparse), with block tokens, paging and SHA-256 checksums; a lab volume with no image was
  never written, and its snapshots list no block. POST /irf-lab/faults
  {"corrupt_blocks": N} makes the next N blocks served carry a flipped byte under the true
  checksum, as a damaged transfer would; GET /irf-lab/faults reports the counters.
* EventBridge's "AWS API Call via CloudTrail" events (source aws.ec2), which moto never
  emits: each EC2 CreateTags setting the SecurityIncidentStatus key logs CloudTrail's record
  of the call, with its caller (userIdentity) and, when it was refused, its errorCode, as
  CloudTrail records refused calls too. GET /irf-lab/events?after=N gives the events with a
  sequence number above N.
* SSM Run Command with InstanceIds: moto runs nothing, reports Success at once and sends
  to every instance of the region. Here SendCommand checks the instances as AWS does
  (existing, running, managed) and leaves the invocations Pending; the lab runtime plays
  the SSM agent, claiming them (GET /irf-lab/ssm/pending) and reporting their end (POST
  /irf-lab/ssm/result). GetCommandInvocation, ListCommandInvocations and ListCommands
  report them as AWS does, delivery and execution timeouts included.
* EC2 Image Builder (moto has none): the pipelines the lab registers (POST
  /irf-lab/imagebuilder/pipelines) answer GetImagePipeline, ListImagePipelineImages and
  StartImagePipelineExecution. A build goes PENDING, BUILDING, TESTING, DISTRIBUTING in
  its first seconds and is AVAILABLE after `build_seconds`, when its AMI is registered in
  the pipeline's account, as the pipeline's distribution would.
* Session Manager StartSession / TerminateSession / DescribeSessions (moto raises
  NotImplementedError): a session to a managed, running instance gets a token and a stream
  URL on the agent the lab runtime registered (POST /irf-lab/ssm/agent {"stream_url"}); the
  runtime redeems the token (POST /irf-lab/ssm/session/claim {"session_id", "token"}) and
  reports the end (POST /irf-lab/ssm/session/end {"session_id"}, with what the agent saw:
  input held back, largest payload; GET /irf-lab/ssm/sessions lists them). Without a registered agent
  the target is not connected, as an instance without its agent is in AWS.
* S3 Object Lock's checksum rule (moto checks only requests with lock headers or a default
  retention, and takes x-amz-sdk-checksum-algorithm alone): a PutObject or UploadPart to a
  bucket with Object Lock, pre-signed too, must carry Content-MD5 or a checksum (header,
  pre-signed query parameter, or an x-amz-trailer naming one, as the SDKs send aws-chunked
  bodies), else 400 InvalidRequest "Content-MD5 OR x-amz-checksum- HTTP header is required
  for Put Object (Put Part) requests with Object Lock parameters".
* S3 Content-MD5 is checked (moto ignores it): one that does not match the body (aws-chunked
  bodies decoded) is 400 BadDigest, one that is no MD5 400 InvalidDigest.
* S3 multipart uploads created with a checksum algorithm (moto only records it): each
  UploadPart must carry that algorithm's checksum, else 400 InvalidRequest "Checksum Type
  mismatch occurred, expected checksum Type: crc32, actual checksum Type: null", and
  CompleteMultipartUpload must list each part's Checksum<ALG>, else 400 InvalidRequest "The
  upload was created using a crc32 checksum. ... It was missing for part N in the request."
  ListParts reports each part's checksum (moto's lists none), as a resuming client needs.
* S3 restores of GLACIER and DEEP_ARCHIVE objects take time (moto restores at once and ignores
  versionId): RestoreObject answers 202 for a new restore, 409 RestoreAlreadyInProgress while
  it runs and 200 once done; it ends --restore-seconds (default 5) later, the lab's scale for
  AWS's hours. Until then GetObject of the version is 403 InvalidObjectState (as moto has it)
  and HeadObject shows x-amz-restore: ongoing-request="true". Only GetObject refuses an archived
  object: moto also refused its tags, ACL and legal hold. POST /irf-lab/s3/archive {"bucket",
  "prefix", "storage_class"} moves every version under the prefix to that class, as the
  evidence bucket's lifecycle rule does after 90 days, and answers {"archived": N}.
  lab_s3_fidelity.py holds these S3 behaviours.
* S3 objects live on disk (--object-dir), never whole in memory: moto joins a multipart
  upload's parts in memory twice and reads a whole object for every GetObject, ranged ones
  too (an 8 GiB volume image took it to 16.5 GB). A completed upload streams its parts into
  the object's file, GetObject streams its range from the file, zeros stay holes. Each
  request's body is freed once its answer is sent, not at the next full collection (moto's
  Flask debug mode, which keeps every request in a cycle, is off).
* The IAM Identity Center portal's GetRoleCredentials (GET /federation/credentials), for the
  token a sign-in gives (POST /irf-lab/sso/token): what the SDKs' SSO credential providers
  call with the token cache of `aws sso login`.
* EC2 security group connection tracking (moto has no connections): POST /irf-lab/ec2/connections
  opens a connection on an instance when its groups allow it, GET lists them; a change of an
  interface's groups leaves tracked connections open and cuts untracked ones the new groups do
  not allow, as EC2 does (lab_ec2_connections.py).
* An optional fixed latency in front of every AWS call (not the /moto-api/ and
  /irf-lab/ control planes), so benchmarks can see what concurrency buys.
* With --watch-stdin the process exits when its standard input closes, which
  happens when the process that started it dies, even by SIGKILL: a test run
  never leaves an emulator behind.
* ListObjectVersions of a prefix is answered from moto's records without copying them:
  moto deep-copies every object of the bucket, data included, on each listing (a verify
  listing the versions of each seal would copy every disk image dozens of times); AWS
  touches no data to list versions. Paging, markers and delimiters stay with moto.
"""

import argparse
import base64
import bisect
import ctypes
import ctypes.util
import datetime
import errno
import hashlib
import hmac
import io
import json
import os
import re
import sys
import threading
import time
import uuid
from urllib.parse import parse_qs

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

import lab_authz
import lab_ec2_connections
import lab_s3_fidelity
import lab_templates

_CREDENTIAL = re.compile(r"Credential=([^/]+)/[0-9]+/([^/]+)/([^/]+)/")
# Characters XML 1.0 cannot carry raw (tab and line feed can).
_XML_UNSAFE = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")

# The EBS direct APIs always speak in blocks of 512 KiB (moto uses 512 bytes).
_EBS_BLOCK_SIZE = 524288
_SNAPSHOT_BLOCKS = re.compile(r"^/snapshots/([^/]+)/blocks(?:/([^/]+))?$")
# Block tokens are good for a week (AWS gives an ExpiryTime; nothing here enforces it).
_BLOCK_TOKEN_LIFETIME = 7 * 24 * 3600

# The tag whose changes open incidents, and the form fields that name tags and resources.
_INCIDENT_TAG = "SecurityIncidentStatus"
_TAG_KEY_FIELD = re.compile(r"^Tag\.([0-9]+)\.Key$")
_TAG_VALUE_FIELD = re.compile(r"^Tag\.([0-9]+)\.Value$")
_RESOURCE_FIELD = re.compile(r"^ResourceId\.([0-9]+)$")
_EVENTS_PER_ANSWER = 1000

# What AWS keeps of a command's output: GetCommandInvocation gives the first 24,000
# characters of standard output and 8,000 of standard error; a plugin's Output 2,500.
_STDOUT_LIMIT, _STDERR_LIMIT, _PLUGIN_OUTPUT_LIMIT = 24000, 8000, 2500
_PLUGINS = {"AWS-RunShellScript": "aws:runShellScript", "AWS-RunPowerShellScript": "aws:runPowerShellScript"}
_FINISHED = ("Success", "Failed", "TimedOut", "Cancelled")


class _Refusal(Exception):
    """An error answer in the caller's protocol: HTTP status, AWS error code, message."""

    def __init__(self, status: str, code: str, message: str, reason: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.reason = status, code, message, reason


def _read_body(environ) -> bytes:
    """The request body, read once; wsgi.input is replaced so that moto still reads it."""
    length = environ.get("CONTENT_LENGTH")
    if length:
        body = environ["wsgi.input"].read(int(length))
    elif environ.get("wsgi.input_terminated"):
        # A chunked body, already decoded by the server: read to its end.
        body = environ["wsgi.input"].read()
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _json_body(environ) -> dict:
    try:
        value = json.loads(_read_body(environ) or b"{}")
    except ValueError as err:
        raise _Refusal("400 Bad Request", "SerializationException", f"the body is not JSON: {err}")
    if not isinstance(value, dict):
        raise _Refusal("400 Bad Request", "SerializationException", "the body is not a JSON object")
    return value


def _answer(start_response, status: str, body: bytes, content_type: str, headers=()):
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body))),
                            ("x-amzn-RequestId", str(uuid.uuid4())), *headers])
    return [body]


def _iso_millis(epoch: float) -> str:
    """A time as SSM writes it in its string dates: 2024-05-01T10:20:30.123Z."""
    moment = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


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


def _account_access_role_is_admin() -> None:
    """Organizations gives the role it creates in a new account AdministratorAccess, as in AWS.

    The emulator creates OrganizationAccountAccessRole with its trust only; the lab's deployer
    reaches member accounts through it, and under authorization it needs the policy AWS gives it.
    """
    from moto.organizations.models import FakeAccount

    original = FakeAccount.__init__

    def init(self, organization, **kwargs):
        original(self, organization, **kwargs)
        role = kwargs.get("RoleName", "OrganizationAccountAccessRole")
        lab_templates.attach_aws_managed(self.id, role, "arn:aws:iam::aws:policy/AdministratorAccess")

    FakeAccount.__init__ = init


def _bucket_policies_are_the_authorizers() -> None:
    """Bucket policies are evaluated by the lab's authorizer (with their conditions), not by moto.

    The emulator enforces a bucket policy's statements but ignores their conditions, so the
    evidence bucket's TLS-only deny would refuse every request.
    """
    from moto.iam.access_control import PermissionResult
    from moto.s3.models import FakeBucket

    FakeBucket.get_permission = lambda self, action, resource: PermissionResult.NEUTRAL


# The user id of the caller whose request this thread serves (set by _Authorization).
_CALLER = threading.local()


def _senders_are_stamped() -> None:
    """SQS stamps a message with its sender's user id (the SenderId attribute): a role
    session's `<role id>:<session name>`, a user's id. The emulator stamps one constant."""
    from moto.sqs.models import SQSBackend

    original = SQSBackend.send_message

    def send_message(self, *args, **kwargs):
        message = original(self, *args, **kwargs)
        user_id = getattr(_CALLER, "user_id", None)
        if user_id:
            message.sender_id = user_id
        return message

    SQSBackend.send_message = send_message


def _interface_groups_replace() -> None:
    """ModifyNetworkInterfaceAttribute replaces an interface's groups, as in AWS.

    The emulator reports an interface's groups as the union of its own and its instance's
    launch groups, so a replaced set never shows. In AWS an interface's groups are its own,
    and an instance's groups are those of its primary interface.
    """
    from moto.ec2.models.elastic_network_interfaces import NetworkInterface, NetworkInterfaceBackend

    NetworkInterface.group_set = property(lambda self: self._group_set)
    original = NetworkInterfaceBackend.modify_network_interface_attribute

    def modify(self, eni_id, group_ids, *args, **kwargs):
        original(self, eni_id, group_ids, *args, **kwargs)
        eni = self.get_network_interface(eni_id)
        if group_ids and eni.instance is not None and eni.device_index == 0:
            eni.instance.security_groups = list(eni._group_set)

    NetworkInterfaceBackend.modify_network_interface_attribute = modify


def _multipart_default_retention() -> None:
    """A completed multipart upload gets its bucket's default Object Lock retention, as in AWS.

    The emulator applies the default to single PutObject calls only, so every disk and memory
    image (multipart uploads) would otherwise show no retention at all.
    """
    from moto.s3.models import S3Backend

    original = S3Backend.complete_multipart_upload

    def complete(self, bucket_name, multipart_id, body):
        key = original(self, bucket_name, multipart_id, body)
        bucket = self.get_bucket(bucket_name)
        if key is not None and bucket.object_lock_enabled and bucket.has_default_lock and not key.lock_mode:
            key.lock_mode = bucket.default_lock_mode
            key.lock_until = bucket.default_retention()
        return key

    S3Backend.complete_multipart_upload = complete


# How long the SSM agent of an instance takes to register once it has a profile (--registration-seconds).
_registration_seconds = 8.0


def _association_times() -> None:
    """An instance profile association records when it was made (moto's keeps no time).

    The SSM agent registers some time after its instance gets a profile (_is_managed).
    A replacement changes the association's profile in place, so it keeps the time.
    """
    from moto.ec2.models.iam_instance_profile import IamInstanceProfileAssociation

    original = IamInstanceProfileAssociation.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.irf_associated_at = time.time()

    IamInstanceProfileAssociation.__init__ = init


def _profile_since(backend, instance) -> float | None:
    """When the instance got the instance profile it has (epoch seconds); None without one."""
    association = getattr(backend, "iam_instance_profile_associations", {}).get(instance.id)
    launched = instance.launch_time.replace(tzinfo=datetime.timezone.utc).timestamp()
    if association is not None:
        return getattr(association, "irf_associated_at", launched)
    return launched if instance.iam_instance_profile else None


def _describe_instance_information(account: str, region: str, request: dict) -> dict:
    wanted = set()
    for flt in request.get("Filters", []) + request.get("InstanceInformationFilterList", []):
        if flt.get("Key") in ("InstanceIds", "InstanceIds".lower(), "instanceIds"):
            wanted.update(flt.get("Values", flt.get("valueSet", [])))
    backend = ec2_backends[account][region]
    now = time.time()
    items = []
    for reservation in backend.reservations.values():
        for instance in reservation.instances:
            if wanted and instance.id not in wanted:
                continue
            if instance.state == "terminated":
                continue
            if not _is_managed(backend, instance, now):
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


def _is_managed(backend, instance, now: float | None = None) -> bool:
    """Whether the instance's SSM agent has registered: it has had a profile long enough."""
    since = _profile_since(backend, instance)
    return since is not None and (time.time() if now is None else now) >= since + _registration_seconds


def _find_instance(backend, instance_id: str):
    for reservation in backend.reservations.values():
        for instance in reservation.instances:
            if instance.id == instance_id:
                return instance
    return None


def _iso_seconds(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class _ImageBuilder:
    """The Image Builder pipelines of the lab and their builds.

    Each image is {"version", "build", "started", "status", "ami", "build_type"}; its state
    follows from the time since it started, and a timer registers its AMI when it is done.
    """

    # Shares of the build time spent in each state before AVAILABLE.
    PHASES = (("PENDING", 0.1), ("BUILDING", 0.6), ("TESTING", 0.8), ("DISTRIBUTING", 1.0))

    def __init__(self):
        self.lock = threading.Lock()
        self.pipelines = {}

    def register(self, request: dict) -> dict:
        account, region, name = request["account"], request["region"], request["name"]
        arn = f"arn:aws:imagebuilder:{region}:{account}:image-pipeline/{name}"
        now = time.time()
        pipeline = {
            "account": account, "region": region, "name": name, "arn": arn,
            "recipe": f"arn:aws:imagebuilder:{region}:{account}:image-recipe/{name}/{request.get('recipe_version', '1.0.0')}",
            "version": request.get("recipe_version", "1.0.0"),
            "schedule": request.get("schedule", "cron(0 6 ? * MON *)"),
            "build_seconds": float(request.get("build_seconds", 8)),
            "created": now, "last_run": None, "images": [],
        }
        with self.lock:
            self.pipelines[arn] = pipeline
        for _ in range(int(request.get("built", 0))):
            self._start(pipeline, "SCHEDULED", started=now - pipeline["build_seconds"] - 1)
        return {"arn": arn}

    def _pipeline(self, account: str, region: str, arn) -> dict:
        pipeline = self.pipelines.get(arn or "")
        if pipeline is None or (pipeline["account"], pipeline["region"]) != (account, region):
            raise _Refusal("404 Not Found", "ResourceNotFoundException",
                           f"The resource ARN '{arn}' does not exist in account {account}, region {region}.")
        return pipeline

    def _start(self, pipeline: dict, build_type: str, started: float) -> dict:
        with self.lock:
            image = {
                "version": pipeline["version"], "build": len(pipeline["images"]) + 1,
                "started": started, "status": None, "ami": None, "build_type": build_type,
            }
            pipeline["images"].append(image)
            pipeline["last_run"] = started
        remaining = started + pipeline["build_seconds"] - time.time()
        if remaining <= 0:
            self._finish(pipeline, image)
        else:
            timer = threading.Timer(remaining, self._finish, args=(pipeline, image))
            timer.daemon = True
            timer.start()
        return image

    def _finish(self, pipeline: dict, image: dict) -> None:
        backend = ec2_backends[pipeline["account"]][pipeline["region"]]
        name = f"{pipeline['name']}-{image['version']}-{image['build']}"
        ami = backend.register_image(name=name, description=f"{pipeline['name']} {image['version']}/{image['build']}")
        backend.create_tags([ami.id], {"Name": name, "irf:image-pipeline": pipeline["name"],
                                       "irf:image-version": f"{image['version']}/{image['build']}"})
        with self.lock:
            image["ami"] = ami.id
            image["status"] = "AVAILABLE"

    def _status(self, pipeline: dict, image: dict) -> str:
        if image["status"]:
            return image["status"]
        share = (time.time() - image["started"]) / max(pipeline["build_seconds"], 0.001)
        for status, until in self.PHASES:
            if share < until:
                return status
        return "DISTRIBUTING"  # done, the timer is registering the AMI

    def _arn(self, pipeline: dict, image: dict) -> str:
        return (f"arn:aws:imagebuilder:{pipeline['region']}:{pipeline['account']}:image/"
                f"{pipeline['name']}/{image['version']}/{image['build']}")

    def get_pipeline(self, account: str, region: str, query: dict) -> dict:
        pipeline = self._pipeline(account, region, (query.get("imagePipelineArn") or [None])[0])
        # The schedule's next run: the next Monday 06:00 UTC (the template's default cron).
        now = datetime.datetime.now(datetime.timezone.utc)
        days = (7 - now.weekday()) % 7 or (7 if now.hour >= 6 else 0)
        next_run = (now + datetime.timedelta(days=days)).replace(hour=6, minute=0, second=0, microsecond=0)
        body = {
            "arn": pipeline["arn"], "name": pipeline["name"], "platform": "Linux",
            "description": "SANS SIFT analysis workstation",
            "imageRecipeArn": pipeline["recipe"], "status": "ENABLED",
            "schedule": {"scheduleExpression": pipeline["schedule"],
                         "pipelineExecutionStartCondition": "EXPRESSION_MATCH_ONLY"},
            "dateCreated": _iso_seconds(pipeline["created"]),
            "dateNextRun": next_run.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        }
        if pipeline["last_run"] is not None:
            body["dateLastRun"] = _iso_seconds(pipeline["last_run"])
        return {"requestId": str(uuid.uuid4()), "imagePipeline": body}

    def list_images(self, account: str, region: str, request: dict) -> dict:
        pipeline = self._pipeline(account, region, request.get("imagePipelineArn"))
        summaries = []
        with self.lock:
            images = list(pipeline["images"])
        for image in images:
            status = self._status(pipeline, image)
            summary = {
                "arn": self._arn(pipeline, image), "name": pipeline["name"], "type": "AMI",
                "version": f"{image['version']}/{image['build']}", "platform": "Linux",
                "osVersion": "Ubuntu 22", "state": {"status": status}, "owner": account,
                "dateCreated": _iso_seconds(image["started"]), "buildType": image["build_type"],
                "imageSource": "CUSTOM", "outputResources": {"amis": []},
            }
            if image["ami"]:
                summary["outputResources"]["amis"].append({
                    "region": region, "image": image["ami"], "accountId": account,
                    "name": f"{pipeline['name']}-{image['version']}-{image['build']}",
                })
            summaries.append(summary)
        return {"requestId": str(uuid.uuid4()), "imageSummaryList": summaries}

    def start(self, account: str, region: str, request: dict) -> dict:
        pipeline = self._pipeline(account, region, request.get("imagePipelineArn"))
        if not request.get("clientToken"):
            raise _Refusal("400 Bad Request", "InvalidRequestException", "clientToken is required")
        image = self._start(pipeline, "USER_INITIATED", started=time.time())
        return {"requestId": str(uuid.uuid4()), "clientToken": request["clientToken"],
                "imageBuildVersionArn": self._arn(pipeline, image)}


class _Sessions:
    """Session Manager sessions, whose agent side the lab runtime plays."""

    def __init__(self):
        self.lock = threading.Lock()
        self.agent_url = None
        self.sessions = {}

    def register_agent(self, request: dict) -> dict:
        with self.lock:
            self.agent_url = request.get("stream_url")
        return {"stream_url": self.agent_url}

    def start(self, account: str, region: str, request: dict, caller: str) -> dict:
        target = request.get("Target", "")
        backend = ec2_backends[account][region]
        instance = _find_instance(backend, target)
        if instance is None or instance.state != "running" or not _is_managed(backend, instance):
            raise _Refusal("400 Bad Request", "TargetNotConnected", f"{target} is not connected.")
        with self.lock:
            if not self.agent_url:
                raise _Refusal("400 Bad Request", "TargetNotConnected", f"{target} is not connected.")
            session_id = f"{caller}-{uuid.uuid4().hex[:17]}"
            token = base64.b64encode(os.urandom(48)).decode()
            self.sessions[session_id] = {
                "account": account, "region": region, "target": target, "token": token,
                "document": request.get("DocumentName") or "SSM-SessionManagerRunShell",
                "parameters": request.get("Parameters") or {}, "owner": caller,
                "status": "Connecting", "started": time.time(), "ended": None, "claimed": False,
            }
            url = f"{self.agent_url}/v1/data-channel/{session_id}?role=publish_subscribe"
        return {"SessionId": session_id, "TokenValue": token, "StreamUrl": url}

    def claim(self, request: dict) -> dict:
        with self.lock:
            session = self.sessions.get(request.get("session_id", ""))
            if session is None or session["claimed"] or session["status"] != "Connecting" \
                    or not hmac.compare_digest(session["token"], request.get("token", "")):
                raise _Refusal("403 Forbidden", "InvalidToken", "unknown session or token")
            session.update(claimed=True, status="Connected")
            return {k: session[k] for k in ("account", "region", "target", "document", "parameters")}

    def end(self, request: dict) -> dict:
        with self.lock:
            session = self.sessions.get(request.get("session_id", ""))
            if session is not None and session["ended"] is None:
                session.update(status="Terminated", ended=time.time())
            if session is not None:
                # What the agent saw of the client: input it held back before it was ready
                # (the client had to resend it), and the largest payload the client sent.
                session["agent"] = {k: request[k] for k in ("held_back", "largest_input") if k in request}
        return {}

    def records(self) -> dict:
        """Every session with the agent's record of it (GET /irf-lab/ssm/sessions)."""
        with self.lock:
            return {"sessions": [
                {"session_id": session_id, "target": s["target"], "status": s["status"], **s.get("agent", {})}
                for session_id, s in self.sessions.items()
            ]}

    def terminate(self, account: str, region: str, request: dict) -> dict:
        session_id = request.get("SessionId", "")
        with self.lock:
            session = self.sessions.get(session_id)
            if session is not None and (session["account"], session["region"]) == (account, region) \
                    and session["ended"] is None:
                session.update(status="Terminated", ended=time.time())
        return {"SessionId": session_id}

    def describe(self, account: str, region: str, request: dict) -> dict:
        state = request.get("State", "Active")
        listed = []
        with self.lock:
            for session_id, session in self.sessions.items():
                if (session["account"], session["region"]) != (account, region):
                    continue
                active = session["ended"] is None
                if (state == "Active") != active:
                    continue
                item = {"SessionId": session_id, "Target": session["target"], "Status": session["status"],
                        "StartDate": session["started"], "Owner": session["owner"],
                        "DocumentName": session["document"]}
                if session["ended"] is not None:
                    item["EndDate"] = session["ended"]
                listed.append(item)
        return {"Sessions": listed}


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


def _data_blocks(path: str) -> list:
    """Indexes of the 512 KiB blocks of a sparse file that overlap its data extents.

    A snapshot of a fresh volume holds only the blocks ever written; the lab's images are
    sparse files of up to 30 GiB that are mostly holes, and their holes are those blocks.
    Where the file system cannot tell holes, SEEK_DATA reports the whole file as data.
    """
    blocks = []
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        position = 0
        while position < size:
            try:
                start = os.lseek(fd, position, os.SEEK_DATA)
            except OSError as err:
                if err.errno == errno.ENXIO:  # only a hole from here to the end
                    break
                raise
            end = os.lseek(fd, start, os.SEEK_HOLE)
            first, last = start // _EBS_BLOCK_SIZE, (end - 1) // _EBS_BLOCK_SIZE
            if blocks and blocks[-1] >= first:
                first = blocks[-1] + 1  # the block was listed for the previous extent
            blocks.extend(range(first, last + 1))
            position = end
    finally:
        os.close(fd)
    return blocks


class _VolumeImages:
    """The raw images of lab volumes, served as the blocks of their snapshots.

    A snapshot is found in the caller's EC2 backend, and its source volume names the image.
    The images never change after seeding, so reading them at call time gives the
    point-in-time copy a snapshot is.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.images = {}
        self.listings = {}
        # Tokens are an HMAC of snapshot and block: nothing to store, and unforgeable.
        self.secret = os.urandom(32)
        self.corrupt_next = 0
        self.corrupted = 0

    def register(self, request: dict) -> dict:
        volumes = request.get("volumes")
        if not isinstance(volumes, dict):
            raise _Refusal("400 Bad Request", "ValidationException", 'expected {"volumes": {"vol-...": path}}')
        for volume_id, path in volumes.items():
            # Refused at once: a wrong path would otherwise surface as a 500 deep in a test.
            if not isinstance(path, str) or not os.path.isabs(path) or not os.path.isfile(path):
                raise _Refusal("400 Bad Request", "ValidationException",
                               f"the image of {volume_id} is not an absolute path to a file: {path!r}")
        with self.lock:
            self.images.update(volumes)
            return {"volumes": len(self.images)}

    def faults(self, request: dict | None) -> dict:
        with self.lock:
            if request is not None:
                count = request.get("corrupt_blocks", 0)
                if not isinstance(count, int) or count < 0:
                    raise _Refusal("400 Bad Request", "ValidationException", "corrupt_blocks must be a count")
                self.corrupt_next = count
            return {"corrupt_blocks": self.corrupt_next, "corrupted": self.corrupted}

    def _image_of(self, account: str, region: str, snapshot_id: str):
        """(image path, volume size in GiB) of a snapshot of a lab volume, or None for a
        snapshot that is not of an EC2 volume (moto's own EBS snapshots). A volume with no
        registered image was never written: its path is None, and it has no blocks."""
        snapshot = ec2_backends[account][region].snapshots.get(snapshot_id)
        volume = getattr(snapshot, "volume", None)
        if volume is None:
            return None
        with self.lock:
            path = self.images.get(getattr(volume, "id", None))
        return (path, int(volume.size))

    def _listing(self, path: str, volume_gib: int) -> list:
        # Keyed by the file's identity too: a lab seeded again may reuse a path.
        info = os.stat(path)
        key = (path, info.st_ino, info.st_size, info.st_mtime_ns)
        with self.lock:
            blocks = self.listings.get(key)
        if blocks is None:
            blocks = _data_blocks(path)
            with self.lock:
                self.listings[key] = blocks
        end = bisect.bisect_left(blocks, (volume_gib << 30) // _EBS_BLOCK_SIZE)
        return blocks[:end]

    def _token(self, snapshot_id: str, index: int) -> str:
        digest = hmac.new(self.secret, f"{snapshot_id}/{index}".encode(), hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    def list_blocks(self, account: str, region: str, snapshot_id: str, query: dict) -> dict | None:
        image = self._image_of(account, region, snapshot_id)
        if image is None:
            return None
        path, volume_gib = image

        def number(name: str, default: int, low: int, high: int, reason: str) -> int:
            text = query.get(name, [str(default)])[0]
            if not text.isdigit() or not low <= int(text) <= high:
                raise _Refusal("400 Bad Request", "ValidationException",
                               f"{name} must be an integer from {low} to {high}, not {text!r}", reason)
            return int(text)

        limit = number("maxResults", 10000, 100, 10000, "INVALID_PARAMETER_VALUE")
        if "pageToken" in query:  # AWS ignores startingBlockIndex then
            start = number("pageToken", 0, 0, 2**31 - 1, "INVALID_PAGE_TOKEN")
        else:
            start = number("startingBlockIndex", 0, 0, 2**31 - 1, "INVALID_PARAMETER_VALUE")
        blocks = self._listing(path, volume_gib) if path else []
        first = bisect.bisect_left(blocks, start)
        page = blocks[first:first + limit]
        answer = {
            "Blocks": [{"BlockIndex": i, "BlockToken": self._token(snapshot_id, i)} for i in page],
            "ExpiryTime": time.time() + _BLOCK_TOKEN_LIFETIME,
            "VolumeSize": volume_gib,
            "BlockSize": _EBS_BLOCK_SIZE,
        }
        if first + limit < len(blocks):
            answer["NextToken"] = str(blocks[first + limit])
        return answer

    def get_block(self, account: str, region: str, snapshot_id: str, index: str, query: dict):
        """(data, base64 SHA-256 of the true data) of one block, or None when not ours."""
        image = self._image_of(account, region, snapshot_id)
        if image is None:
            return None
        token = query.get("blockToken", [""])[0]
        # A never-written volume lists no block, so no token of it is valid.
        if (image[0] is None or not index.isdigit()
                or not hmac.compare_digest(token, self._token(snapshot_id, int(index)))):
            raise _Refusal("400 Bad Request", "ValidationException",
                           f"The block token is not valid for block {index} of {snapshot_id}.",
                           "INVALID_BLOCK_TOKEN")
        fd = os.open(image[0], os.O_RDONLY)
        try:
            data = os.pread(fd, _EBS_BLOCK_SIZE, int(index) * _EBS_BLOCK_SIZE)
        finally:
            os.close(fd)
        data = data.ljust(_EBS_BLOCK_SIZE, b"\0")
        checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
        with self.lock:
            corrupt = self.corrupt_next > 0
            if corrupt:
                self.corrupt_next -= 1
                self.corrupted += 1
        if corrupt:
            damaged = bytearray(data)
            damaged[len(damaged) // 2] ^= 0xFF
            data = bytes(damaged)
        return data, checksum


class _TagEvents:
    """CloudTrail's records of CreateTags calls that set the incident tag, as EventBridge
    delivers them ("AWS API Call via CloudTrail"), in order.

    Sequence numbers start at 1 and have no gaps, so an event's place in the log is its
    number minus one.
    """

    def __init__(self):
        self.lock = threading.Lock()
        # Held over a tagging call and its event, so that events come in the order of the calls.
        self.tagging = threading.Lock()
        self.log = []

    def record(self, account: str, region: str, caller, instance_ids: list, tags: list,
               error_code: str | None) -> None:
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        identity = {"type": "Unknown", "accountId": account}
        if caller is not None:
            kinds = {"assumed-role": "AssumedRole", "user": "IAMUser", "root": "Root"}
            identity = {
                "type": kinds.get(caller.kind, caller.kind),
                "principalId": caller.context.get("aws:userid"),
                "arn": caller.arn,
                "accountId": caller.account,
            }
        detail = {
            "eventVersion": "1.09",
            "userIdentity": identity,
            "eventTime": now,
            "eventSource": "ec2.amazonaws.com",
            "eventName": "CreateTags",
            "awsRegion": region,
            "requestParameters": {
                "resourcesSet": {"items": [{"resourceId": i} for i in instance_ids]},
                "tagSet": {"items": [{"key": k, "value": v} for k, v in tags]},
            },
            "requestID": str(uuid.uuid4()),
            "eventID": str(uuid.uuid4()),
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": account,
            "eventCategory": "Management",
        }
        if error_code:
            detail["errorCode"] = error_code
            detail["errorMessage"] = "You are not authorized to perform this operation."
        else:
            detail["responseElements"] = {"_return": True}
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.ec2",
            "account": account,
            "time": now,
            "region": region,
            "resources": [],
            "detail": detail,
        }
        with self.lock:
            self.log.append({"seq": len(self.log) + 1, "event": event})

    def after(self, query: dict) -> dict:
        text = query.get("after", ["0"])[0]
        if not text.isdigit():
            raise _Refusal("400 Bad Request", "ValidationException", f"after must be a number, not {text!r}")
        with self.lock:
            # "last" is the newest event of all, where a reader that wants only new ones starts.
            return {"events": self.log[int(text):int(text) + _EVENTS_PER_ANSWER], "last": len(self.log)}


def _create_tags_call(params: dict):
    """(instance ids, [(key, value)]) of an EC2 CreateTags form, or None for any other call."""
    if params.get("Action", [""])[0] != "CreateTags":
        return None

    def numbered(pattern):
        return {int(m.group(1)): v[0] for name, v in params.items() if (m := pattern.match(name))}

    resources = [r for _, r in sorted(numbered(_RESOURCE_FIELD).items())]
    instances = [r for r in dict.fromkeys(resources) if r.startswith("i-")]
    values = numbered(_TAG_VALUE_FIELD)
    tags = [(key, values.get(n, "")) for n, key in sorted(numbered(_TAG_KEY_FIELD).items())]
    return instances, tags


class _RunCommand:
    """SSM Run Command with the lab runtime as the agent of every managed instance.

    An invocation goes Pending -> InProgress (claimed by the agent) -> Success, Failed or
    TimedOut (reported by it). As in AWS, one not claimed within the command's
    TimeoutSeconds times out undelivered, and one running past its executionTimeout
    parameter (3600 s by default) times out in execution: a lab runtime killed midway
    does not leave a command running for ever.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.commands = {}

    def _recorded(self, account: str, region: str, command_id) -> dict | None:
        command = self.commands.get(command_id)
        # Another account or region does not see the command, as in AWS.
        if command is None or (command["account"], command["region"]) != (account, region):
            return None
        return command

    @staticmethod
    def _expire(command: dict, now: float) -> None:
        for invocation in command["invocations"].values():
            if invocation["status"] == "Pending" and now > command["requested"] + command["timeout_seconds"]:
                invocation.update(status="TimedOut", details="DeliveryTimedOut", ended=now)
            elif (invocation["status"] == "InProgress"
                  and now > invocation["started"] + command["execution_timeout"]):
                invocation.update(status="TimedOut", details="ExecutionTimedOut", ended=now)

    def send(self, account: str, region: str, request: dict) -> dict | None:
        instance_ids = list(dict.fromkeys(request.get("InstanceIds") or []))
        if not instance_ids or request.get("Targets"):
            return None  # targets by tag: moto's own answer
        backend = ec2_backends[account][region]
        instances = {i.id: i for r in backend.reservations.values() for i in r.instances}
        invalid = [
            i for i in instance_ids
            if i not in instances or instances[i].state != "running" or not _is_managed(backend, instances[i])
        ]
        if invalid:
            raise _Refusal("400 Bad Request", "InvalidInstanceId",
                           f"Instances [[{', '.join(invalid)}]] not in a valid state for account {account}")
        parameters = request.get("Parameters") or {}
        try:
            execution_timeout = int((parameters.get("executionTimeout") or ["3600"])[0])
        except ValueError:
            raise _Refusal("400 Bad Request", "InvalidParameters", "executionTimeout is not a number")
        command = {
            "account": account,
            "region": region,
            "command_id": str(uuid.uuid4()),
            "document_name": request.get("DocumentName", ""),
            "parameters": parameters,
            "instance_ids": instance_ids,
            "comment": request.get("Comment", ""),
            "timeout_seconds": int(request.get("TimeoutSeconds") or 3600),
            "execution_timeout": execution_timeout,
            "max_concurrency": request.get("MaxConcurrency", "50"),
            "max_errors": request.get("MaxErrors", "0"),
            "requested": time.time(),
            "invocations": {
                i: {"status": "Pending", "details": "Pending", "code": -1, "stdout": "", "stderr": "",
                    "started": None, "ended": None}
                for i in instance_ids
            },
        }
        with self.lock:
            self.commands[command["command_id"]] = command
            return {"Command": self._command(command)}

    def _command(self, command: dict) -> dict:
        statuses = [i["status"] for i in command["invocations"].values()]
        if all(s == "Pending" for s in statuses):
            status = "Pending"
        elif not all(s in _FINISHED for s in statuses):
            status = "InProgress"
        else:
            status = next((s for s in ("Failed", "TimedOut", "Cancelled") if s in statuses), "Success")
        delivery_timed_out = sum(i["details"] == "DeliveryTimedOut" for i in command["invocations"].values())
        return {
            "CommandId": command["command_id"],
            "DocumentName": command["document_name"],
            "DocumentVersion": "$DEFAULT",
            "Comment": command["comment"],
            "ExpiresAfter": command["requested"] + command["timeout_seconds"],
            "Parameters": command["parameters"],
            "InstanceIds": command["instance_ids"],
            "Targets": [],
            "RequestedDateTime": command["requested"],
            "Status": status,
            "StatusDetails": status,
            "OutputS3Region": command["region"],
            "OutputS3BucketName": "",
            "OutputS3KeyPrefix": "",
            "MaxConcurrency": command["max_concurrency"],
            "MaxErrors": command["max_errors"],
            "TargetCount": len(statuses),
            "CompletedCount": sum(s in _FINISHED for s in statuses),
            "ErrorCount": sum(s in ("Failed", "TimedOut") for s in statuses) - delivery_timed_out,
            "DeliveryTimedOutCount": delivery_timed_out,
            "ServiceRole": "",
            "NotificationConfig": {"NotificationArn": "", "NotificationEvents": [], "NotificationType": ""},
            "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": False},
            "TimeoutSeconds": command["timeout_seconds"],
        }

    def invocation(self, account: str, region: str, request: dict) -> dict | None:
        with self.lock:
            command = self._recorded(account, region, request.get("CommandId"))
            if command is None:
                return None
            self._expire(command, time.time())
            instance_id = request.get("InstanceId")
            invocation = command["invocations"].get(instance_id)
            plugin = _PLUGINS.get(command["document_name"], "aws:runShellScript")
            if invocation is None or request.get("PluginName") not in (None, plugin):
                raise _Refusal("400 Bad Request", "InvocationDoesNotExist",
                               f"No invocation of {command['command_id']} on {instance_id}")
            started, ended = invocation["started"], invocation["ended"]
            return {
                "CommandId": command["command_id"],
                "InstanceId": instance_id,
                "Comment": command["comment"],
                "DocumentName": command["document_name"],
                "DocumentVersion": "$DEFAULT",
                "PluginName": plugin,
                "ResponseCode": invocation["code"],
                "ExecutionStartDateTime": _iso_millis(started) if started else "",
                "ExecutionElapsedTime": f"PT{ended - started:.3f}S" if started and ended else "",
                "ExecutionEndDateTime": _iso_millis(ended) if ended else "",
                "Status": invocation["status"],
                "StatusDetails": invocation["details"],
                "StandardOutputContent": invocation["stdout"][:_STDOUT_LIMIT],
                "StandardOutputUrl": "",
                "StandardErrorContent": invocation["stderr"][:_STDERR_LIMIT],
                "StandardErrorUrl": "",
                "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": False},
            }

    def list_invocations(self, account: str, region: str, request: dict) -> dict | None:
        command_id, instance_id = request.get("CommandId"), request.get("InstanceId")
        with self.lock:
            if command_id is not None:
                command = self._recorded(account, region, command_id)
                if command is None:
                    return None
                commands = [command]
            else:  # newest first, as AWS lists them
                commands = [c for c in reversed(list(self.commands.values()))
                            if (c["account"], c["region"]) == (account, region)]
            now = time.time()
            items = []
            for command in commands:
                self._expire(command, now)
                for target, invocation in command["invocations"].items():
                    if instance_id is None or target == instance_id:
                        items.append(self._listed_invocation(command, target, invocation, request.get("Details")))
        token = str(request.get("NextToken") or "0")
        if not token.isdigit():
            raise _Refusal("400 Bad Request", "InvalidNextToken", "The specified token is not valid.")
        start, limit = int(token), int(request.get("MaxResults") or 50)
        answer = {"CommandInvocations": items[start:start + limit]}
        if start + limit < len(items):
            answer["NextToken"] = str(start + limit)
        return answer

    @staticmethod
    def _listed_invocation(command: dict, instance_id: str, invocation: dict, details: bool) -> dict:
        item = {
            "CommandId": command["command_id"],
            "InstanceId": instance_id,
            "InstanceName": "",
            "Comment": command["comment"],
            "DocumentName": command["document_name"],
            "DocumentVersion": "$DEFAULT",
            "RequestedDateTime": command["requested"],
            "Status": invocation["status"],
            "StatusDetails": invocation["details"],
            "TraceOutput": "",
            "StandardOutputUrl": "",
            "StandardErrorUrl": "",
            "CommandPlugins": [],
            "ServiceRole": "",
            "NotificationConfig": {"NotificationArn": "", "NotificationEvents": [], "NotificationType": ""},
            "CloudWatchOutputConfig": {"CloudWatchLogGroupName": "", "CloudWatchOutputEnabled": False},
        }
        if details:
            output = invocation["stdout"]
            if invocation["stderr"]:
                output += "\n----------ERROR-------\n" + invocation["stderr"]
            plugin = {
                "Name": _PLUGINS.get(command["document_name"], "aws:runShellScript"),
                "Status": invocation["status"],
                "StatusDetails": invocation["details"],
                "ResponseCode": invocation["code"],
                "Output": output[:_PLUGIN_OUTPUT_LIMIT],
                "StandardOutputUrl": "",
                "StandardErrorUrl": "",
                "OutputS3Region": command["region"],
                "OutputS3BucketName": "",
                "OutputS3KeyPrefix": "",
            }
            if invocation["started"]:
                plugin["ResponseStartDateTime"] = invocation["started"]
            if invocation["ended"]:
                plugin["ResponseFinishDateTime"] = invocation["ended"]
            item["CommandPlugins"] = [plugin]
        return item

    def list_commands(self, account: str, region: str, request: dict) -> dict | None:
        # Only the lookup of one recorded command; the rest stays with moto.
        with self.lock:
            command = self._recorded(account, region, request.get("CommandId"))
            if command is None:
                return None
            self._expire(command, time.time())
            return {"Commands": [self._command(command)]}

    def claim(self) -> dict:
        """The Pending invocations, now InProgress: two agents never run one twice."""
        now = time.time()
        claimed = []
        with self.lock:
            for command in self.commands.values():
                self._expire(command, now)
                for instance_id, invocation in command["invocations"].items():
                    if invocation["status"] != "Pending":
                        continue
                    invocation.update(status="InProgress", details="InProgress", started=now)
                    claimed.append({
                        "command_id": command["command_id"],
                        "instance_id": instance_id,
                        "account": command["account"],
                        "region": command["region"],
                        "document_name": command["document_name"],
                        "parameters": command["parameters"],
                        "timeout_seconds": command["execution_timeout"],
                    })
        return {"commands": claimed}

    def finish(self, result: dict) -> dict:
        status, code = result.get("status"), result.get("response_code", -1)
        if status not in ("Success", "Failed", "TimedOut") or not isinstance(code, int):
            raise _Refusal("400 Bad Request", "ValidationException",
                           f"expected a status of Success, Failed or TimedOut and an integer "
                           f"response_code, not {status!r} and {code!r}")
        with self.lock:
            command = self.commands.get(result.get("command_id"))
            invocation = command and command["invocations"].get(result.get("instance_id"))
            if not invocation:
                raise _Refusal("404 Not Found", "InvocationDoesNotExist",
                               f"no invocation of {result.get('command_id')} on {result.get('instance_id')}")
            if invocation["status"] in _FINISHED:
                # Timed out here before the agent reported: AWS keeps the first end too.
                raise _Refusal("409 Conflict", "InvocationFinished",
                               f"the invocation already ended {invocation['details']}")
            now = time.time()
            invocation.update(
                status=status,
                details="ExecutionTimedOut" if status == "TimedOut" else status,
                code=code,
                stdout=str(result.get("stdout", "")),
                stderr=str(result.get("stderr", "")),
                started=invocation["started"] or now,
                ended=now,
            )
        return {}


class _StandIns:
    """WSGI middleware that answers the calls moto lacks, in the caller's account.

    It also serves the lab's control endpoints under /irf-lab/ (no signature needed).
    """

    def __init__(self, app, restore_seconds: float):
        # S3's checksum rules and restores sit between these stand-ins and moto.
        self.s3 = lab_s3_fidelity.S3Fidelity(app, _read_body, restore_seconds)
        self.app = self.s3
        self.images = _VolumeImages()
        self.events = _TagEvents()
        self.commands = _RunCommand()
        self.builder = _ImageBuilder()
        self.sessions = _Sessions()
        self.connections = lab_ec2_connections.Connections()

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/irf-lab/"):
            return self._control(environ, start_response, path)
        match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        if not match:
            return self._xml_safe(environ, start_response)
        access_key, region, service = match.groups()
        account = get_account_id_from(access_key)
        if service == "ec2":
            return self._ec2(environ, start_response, account, region, access_key)
        if service == "ebs":
            return self._ebs(environ, start_response, account, region, path)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        method = environ.get("REQUEST_METHOD", "")
        handler = None
        if service == "ssm" and target == "AmazonSSM.DescribeInstanceInformation":
            handler, content_type = _describe_instance_information, "application/x-amz-json-1.1"
        elif service == "ssm" and target == "AmazonSSM.SendCommand":
            handler, content_type = self.commands.send, "application/x-amz-json-1.1"
        elif service == "ssm" and target == "AmazonSSM.GetCommandInvocation":
            handler, content_type = self.commands.invocation, "application/x-amz-json-1.1"
        elif service == "ssm" and target == "AmazonSSM.ListCommandInvocations":
            handler, content_type = self.commands.list_invocations, "application/x-amz-json-1.1"
        elif service == "ssm" and target == "AmazonSSM.ListCommands":
            handler, content_type = self.commands.list_commands, "application/x-amz-json-1.1"
        elif service == "ssm" and target == "AmazonSSM.StartSession":
            # AWS names a session after its starter and tags it with the starter's user id.
            starter = lab_authz.identify(access_key)
            caller = (starter.name if starter is not None else None) or access_key
            user_id = starter.context.get("aws:userid") if starter is not None else access_key

            def start_session(a, r, q):
                started = self.sessions.start(a, r, q, caller)
                # Session Manager tags each session with the user id of whoever started it.
                lab_authz.SESSION_TAGS[started["SessionId"]] = {"aws:ssmmessages:session-id": user_id}
                return started

            handler, content_type = start_session, "application/x-amz-json-1.1"
        elif service == "ssm" and target == "AmazonSSM.TerminateSession":
            handler, content_type = self.sessions.terminate, "application/x-amz-json-1.1"
        elif service == "ssm" and target == "AmazonSSM.DescribeSessions":
            handler, content_type = self.sessions.describe, "application/x-amz-json-1.1"
        elif service == "imagebuilder":
            return self._imagebuilder(environ, start_response, account, region, path, method)
        elif service == "securityhub" and path == "/findings/batchupdate" and method == "PATCH":
            handler, content_type = _batch_update_findings, "application/json"
        if handler is not None:
            try:
                result = handler(account, region, _json_body(environ))
            except _Refusal as refusal:
                body = json.dumps({"__type": refusal.code, "message": refusal.message}).encode()
                return _answer(start_response, refusal.status, body, content_type)
            if result is not None:  # None: a call about something moto holds, for moto
                return _answer(start_response, "200 OK", json.dumps(result).encode(), content_type)
        return self._xml_safe(environ, start_response)

    def _control(self, environ, start_response, path):
        method = environ.get("REQUEST_METHOD", "")
        query = parse_qs(environ.get("QUERY_STRING", ""))
        try:
            if path == "/irf-lab/volume-images" and method == "POST":
                result = self.images.register(_json_body(environ))
            elif path == "/irf-lab/faults":
                result = self.images.faults(_json_body(environ) if method == "POST" else None)
            elif path == "/irf-lab/events" and method == "GET":
                result = self.events.after(query)
            elif path == "/irf-lab/ssm/pending" and method in ("GET", "POST"):
                result = self.commands.claim()
            elif path == "/irf-lab/ssm/result" and method == "POST":
                result = self.commands.finish(_json_body(environ))
            elif path == "/irf-lab/ssm/agent" and method == "POST":
                result = self.sessions.register_agent(_json_body(environ))
            elif path == "/irf-lab/ssm/session/claim" and method == "POST":
                result = self.sessions.claim(_json_body(environ))
            elif path == "/irf-lab/ssm/session/end" and method == "POST":
                result = self.sessions.end(_json_body(environ))
            elif path == "/irf-lab/ssm/sessions" and method == "GET":
                result = self.sessions.records()
            elif path == "/irf-lab/imagebuilder/pipelines" and method == "POST":
                result = self.builder.register(_json_body(environ))
            elif path == "/irf-lab/s3/archive" and method == "POST":
                result = self._archive(_json_body(environ))
            elif path == "/irf-lab/ec2/connections" and method == "POST":
                try:
                    result = self.connections.open(_json_body(environ))
                except lab_ec2_connections.Refused as refused:
                    raise _Refusal("409 Conflict", "ConnectionRefused", str(refused))
            elif path == "/irf-lab/ec2/connections" and method == "GET":
                result = {"connections": self.connections.list(query.get("instance_id", [""])[0])}
            else:
                raise _Refusal("404 Not Found", "NotFound", f"no lab endpoint {method} {path}")
        except _Refusal as refusal:
            body = json.dumps({"error": refusal.code, "message": refusal.message}).encode()
            return _answer(start_response, refusal.status, body, "application/json")
        return _answer(start_response, "200 OK", json.dumps(result).encode(), "application/json")

    def _archive(self, request: dict) -> dict:
        try:
            return self.s3.archive(request)
        except LookupError as err:
            raise _Refusal("404 Not Found", "NoSuchBucket", str(err))
        except ValueError as err:
            raise _Refusal("400 Bad Request", "ValidationException", str(err))

    def _imagebuilder(self, environ, start_response, account, region, path, method):
        try:
            if path == "/GetImagePipeline" and method == "GET":
                result = self.builder.get_pipeline(account, region, parse_qs(environ.get("QUERY_STRING", "")))
            elif path == "/ListImagePipelineImages" and method == "POST":
                result = self.builder.list_images(account, region, _json_body(environ))
            elif path == "/StartImagePipelineExecution" and method == "PUT":
                result = self.builder.start(account, region, _json_body(environ))
            else:
                raise _Refusal("400 Bad Request", "InvalidRequestException",
                               f"the lab's Image Builder does not serve {method} {path}")
        except _Refusal as refusal:
            return _answer(start_response, refusal.status, json.dumps({"message": refusal.message}).encode(),
                           "application/json", [("x-amzn-ErrorType", refusal.code)])
        return _answer(start_response, "200 OK", json.dumps(result).encode(), "application/json")

    def _ebs(self, environ, start_response, account, region, path):
        match = _SNAPSHOT_BLOCKS.match(path)
        if not match or environ.get("REQUEST_METHOD") != "GET":
            return self._xml_safe(environ, start_response)
        snapshot_id, index = match.groups()
        query = parse_qs(environ.get("QUERY_STRING", ""))
        try:
            if index is None:
                result = self.images.list_blocks(account, region, snapshot_id, query)
                if result is not None:
                    return _answer(start_response, "200 OK", json.dumps(result).encode(), "application/json")
            else:
                block = self.images.get_block(account, region, snapshot_id, index, query)
                if block is not None:
                    data, checksum = block
                    return _answer(start_response, "200 OK", data, "application/octet-stream", [
                        ("x-amz-Data-Length", str(len(data))),
                        ("x-amz-Checksum", checksum),
                        ("x-amz-Checksum-Algorithm", "SHA256"),
                    ])
        except _Refusal as refusal:
            # REST-JSON: the code travels in a header; the model names the fields Message
            # and Reason, and clients also read a lower-case message.
            error = {"message": refusal.message, "Message": refusal.message}
            if refusal.reason:
                error["Reason"] = refusal.reason
            return _answer(start_response, refusal.status, json.dumps(error).encode(), "application/json",
                           [("x-amzn-ErrorType", refusal.code)])
        return self._xml_safe(environ, start_response)

    def _ec2(self, environ, start_response, account, region, access_key):
        # The Query protocol puts the action in the form body (or, for GET, the query string).
        body = _read_body(environ)
        params = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        try:
            params.update(parse_qs(body.decode(), keep_blank_values=True))
        except UnicodeDecodeError:
            pass
        regrouped = self.connections.interfaces_of_call(account, region, params)
        if regrouped:
            return self._regroup(environ, start_response, account, region, regrouped)
        call = _create_tags_call(params)
        if call is None or _INCIDENT_TAG not in dict(call[1]) or not call[0]:
            return self._xml_safe(environ, start_response)
        instance_ids, tags = call
        with self.events.tagging:
            chunks, status = self._answered(environ, start_response)
            backend = ec2_backends[account][region]
            # moto tags instances that do not exist, where AWS refuses the call.
            existing = [i for i in instance_ids if backend.get_instance_by_id(i) is not None]
            refused = None
            if not status.startswith("2"):
                code = re.search(rb"<Code>([^<]+)</Code>", b"".join(chunks))
                refused = "Client." + (code.group(1).decode() if code else "Unknown")
            if existing:
                caller = lab_authz.identify(access_key)
                self.events.record(account, region, caller, existing, tags, refused)
        return chunks

    def _regroup(self, environ, start_response, account, region, interfaces):
        """A change of interfaces' groups, then EC2's connection tracking on what it changed."""
        chunks, status = self._answered(environ, start_response)
        if status.startswith("2"):
            self.connections.groups_changed(account, region, interfaces)
        return chunks

    def _answered(self, environ, start_response):
        """moto's answer to an EC2 call, and its HTTP status."""
        seen = {}

        def watch(status, headers, exc_info=None):
            seen["status"] = status
            return start_response(status, headers)

        chunks = self._xml_safe(environ, watch)
        return chunks, seen.get("status", "")

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


class _Authorization:
    """WSGI middleware that authorizes every signed AWS call (lab_authz) before moto sees it.

    It also serves the lab's deployment of the templates (POST /irf-lab/deploy), the
    credentials AWS services hand to their roles (POST /irf-lab/service-credentials: a Lambda
    function's, a task's, an instance's), and the authorizer's state (GET/POST
    /irf-lab/authorization, GET /irf-lab/denials).
    """

    def __init__(self, app, authorizer):
        self.app = app
        self.authorizer = authorizer
        self.deployer = lab_templates.Deployer()
        self.portal = _SsoPortal()

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path in ("/irf-lab/deploy", "/irf-lab/service-credentials", "/irf-lab/authorization", "/irf-lab/denials",
                    "/irf-lab/sso/token"):
            return self._control(environ, start_response, path)
        if path == "/federation/credentials" and environ.get("REQUEST_METHOD") == "GET":
            # The IAM Identity Center portal: its callers hold a bearer token, not a signature.
            return self.portal.role_credentials(environ, start_response)
        if path.startswith(("/moto-api", "/irf-lab/")):
            return self.app(environ, start_response)
        signed = lab_authz.signer(environ)
        if signed is None:
            if self.authorizer.mode == "enforce":
                status, headers, body = lab_authz.refusal_response(
                    "s3", "Anonymous requests are not allowed by any of the lab's policies")
                start_response(status, [*headers, ("Content-Length", str(len(body)))])
                return [body]
            return self.app(environ, start_response)
        access_key, region, service, presigned = signed
        body = _read_body(environ)
        request = lab_authz.Request(environ, body, service, region, access_key, presigned)
        if service == "sts" and request.operation == "GetCallerIdentity":
            return self.app(environ, start_response)  # AWS never refuses it
        principal = lab_authz.identify(access_key)
        _CALLER.user_id = principal.context.get("aws:userid") if principal is not None else None
        if principal is None:
            message = "The security token included in the request is invalid."
            self.authorizer.record_unknown_key(access_key, request, message)
            if self.authorizer.mode == "enforce":
                status, headers, body = lab_authz.refusal_response(service, message)
                start_response(status, [*headers, ("Content-Length", str(len(body)))])
                return [body]
            return self.app(environ, start_response)
        message = self.authorizer.authorize(principal, request) or lab_authz.hides_missing_key(
            self.authorizer, principal, request)
        if message is None:
            return self.app(environ, start_response)
        status, headers, body = lab_authz.refusal_response(service, message)
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [body]

    def _control(self, environ, start_response, path):
        method = environ.get("REQUEST_METHOD", "")
        try:
            if path == "/irf-lab/deploy" and method == "POST":
                result = self.deployer.deploy(_json_body(environ))
            elif path == "/irf-lab/service-credentials" and method == "POST":
                result = _service_credentials(_json_body(environ), self.authorizer)
            elif path == "/irf-lab/authorization" and method == "GET":
                result = self.authorizer.status()
            elif path == "/irf-lab/authorization" and method == "POST":
                self.authorizer.set_mode(_json_body(environ).get("mode"))
                result = self.authorizer.status()
            elif path == "/irf-lab/denials" and method == "GET":
                result = {"denials": _read_lines(self.authorizer.log_path)}
            elif path == "/irf-lab/sso/token" and method == "POST":
                result = self.portal.sign_in(_json_body(environ))
            else:
                raise _Refusal("404 Not Found", "NotFound", f"no lab endpoint {method} {path}")
        except (lab_templates.TemplateError, ValueError) as err:
            body = json.dumps({"error": "ValidationException", "message": str(err)}).encode()
            return _answer(start_response, "400 Bad Request", body, "application/json")
        except _Refusal as refusal:
            body = json.dumps({"error": refusal.code, "message": refusal.message}).encode()
            return _answer(start_response, refusal.status, body, "application/json")
        except Exception as err:  # the emulator refused what a template asked: say what
            body = json.dumps({"error": type(err).__name__, "message": str(err)}).encode()
            return _answer(start_response, "500 Internal Server Error", body, "application/json")
        return _answer(start_response, "200 OK", json.dumps(result).encode(), "application/json")


def _read_lines(path):
    try:
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def _service_credentials(request, authorizer):
    """Credentials of a role for the AWS service that runs as it, as the service would get them.

    The role's trust policy must let the service assume it (Lambda for a function's role, ECS
    tasks for a task role, EC2 for an instance profile's role), as AWS requires.
    """
    from moto.sts.models import sts_backends

    service, role_arn = request.get("service", ""), request.get("role_arn", "")
    session_name = request.get("session_name") or service.split(".")[0]
    if not re.fullmatch(r"[a-z0-9-]+\.amazonaws\.com", service):
        raise _Refusal("400 Bad Request", "ValidationException",
                       f"service {service!r} is not a service principal (e.g. lambda.amazonaws.com)")
    parts = role_arn.split(":")
    if len(parts) < 6 or not parts[5].startswith("role/"):
        raise _Refusal("400 Bad Request", "ValidationException", f"{role_arn!r} is not a role ARN")
    account, name = parts[4], parts[5].split("/")[-1]
    try:
        role = iam_backends[account]["aws"].get_role(name)
    except Exception:
        raise _Refusal("404 Not Found", "NoSuchEntity", f"no role {role_arn}")
    # The service assumes the role as any principal would: its trust policy decides.
    answer = authorizer.evaluator.decide({
        "principal": service, "action": "sts:AssumeRole", "resource": role.arn, "resourceAccount": account,
        "context": {"aws:SourceAccount": account, "aws:SecureTransport": "true",
                    **({"aws:SourceArn": request["source_arn"]} if request.get("source_arn") else {})},
        "identityPolicies": [], "resourcePolicy": json.loads(role.assume_role_policy_document),
    })
    allowed = answer.get("decision") == "Allowed"
    if not allowed:
        raise _Refusal("403 Forbidden", "AccessDenied",
                       f"the trust policy of {role_arn} does not let {service} assume it")
    session = sts_backends[account]["aws"].assume_role(
        region_name="us-east-1", role_session_name=session_name, role_arn=role.arn, policy=None,
        duration=int(request.get("duration_seconds", 43200)), external_id=None)
    return {"AccessKeyId": session.access_key_id, "SecretAccessKey": session.secret_access_key,
            "SessionToken": session.session_token, "Expiration": session.expiration.isoformat(),
            "Arn": f"arn:aws:sts::{account}:assumed-role/{name}/{session_name}"}


class _SsoPortal:
    """The IAM Identity Center portal's GetRoleCredentials (GET /federation/credentials), as the
    SDKs' SSO credential providers call it with the token of `aws sso login`.

    A sign-in (POST /irf-lab/sso/token {"user", "assignments": [{"account_id", "role_name"}],
    "lifetime_seconds"}) gives an access token, as `aws sso login` would put in the token
    cache. The portal answers a token it never gave, or one past its time, with
    UnauthorizedException; a role the user is not assigned with ForbiddenException; otherwise
    the role's credentials, a session named after the user, as Identity Center's
    permission-set roles give them.
    """

    def __init__(self):
        self.tokens = {}
        self.lock = threading.Lock()

    def sign_in(self, request: dict) -> dict:
        user = request.get("user") or "responder@example.com"
        assignments = {(a["account_id"], a["role_name"]) for a in request.get("assignments", [])}
        if not assignments:
            raise ValueError("a sign-in needs at least one assignment {account_id, role_name}")
        lifetime = int(request.get("lifetime_seconds", 8 * 3600))
        token = "lab-sso-" + base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("=")
        expires = time.time() + lifetime
        with self.lock:
            self.tokens[token] = (user, assignments, expires)
        return {"accessToken": token,
                "expiresAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))}

    def role_credentials(self, environ, start_response):
        from moto.sts.models import sts_backends

        query = parse_qs(environ.get("QUERY_STRING", ""))
        account = query.get("account_id", [""])[0]
        role_name = query.get("role_name", [""])[0]
        token = environ.get("HTTP_X_AMZ_SSO_BEARER_TOKEN", "")
        with self.lock:
            known = self.tokens.get(token)
        if known is None or known[2] <= time.time():
            return self._refuse(start_response, "401 Unauthorized", "UnauthorizedException",
                                "Session token not found or invalid")
        user, assignments, expires = known
        if (account, role_name) not in assignments:
            return self._refuse(start_response, "403 Forbidden", "ForbiddenException",
                                "No access")
        try:
            role = iam_backends[account]["aws"].get_role(role_name)
        except Exception:
            return self._refuse(start_response, "403 Forbidden", "ForbiddenException",
                                "No access")
        session = sts_backends[account]["aws"].assume_role(
            region_name="us-east-1", role_session_name=user, role_arn=role.arn, policy=None,
            duration=int(max(900, min(expires - time.time(), 43200))), external_id=None)
        expiration = session.expiration
        if expiration.tzinfo is None:  # moto keeps UTC without saying so
            expiration = expiration.replace(tzinfo=datetime.timezone.utc)
        body = json.dumps({"roleCredentials": {
            "accessKeyId": session.access_key_id, "secretAccessKey": session.secret_access_key,
            "sessionToken": session.session_token,
            "expiration": int(expiration.timestamp() * 1000)}}).encode()
        return _answer(start_response, "200 OK", body, "application/json")

    @staticmethod
    def _refuse(start_response, status, code, message):
        body = json.dumps({"message": message}).encode()
        return _answer(start_response, status, body, "application/json", [("x-amzn-ErrorType", code)])


class _Answer:
    """A WSGI answer that empties its request's environ once the server has sent it."""

    def __init__(self, chunks, environ):
        self.chunks, self.environ = chunks, environ

    def __iter__(self):
        return iter(self.chunks)

    def close(self):
        try:
            if hasattr(self.chunks, "close"):
                self.chunks.close()
        finally:
            self.environ.clear()


def _requests_are_freed(app):
    """A request's memory is freed once its answer is sent, not at Python's next full collection.

    werkzeug's request and its environ refer to each other, and the environ holds the body
    (read once, _read_body): each upload's copies waited for the oldest generation's
    collection, which runs rarely while requests overlap, and the parts of one volume image
    (16 MiB and more each) took the emulator to 20 GB. Emptying the environ breaks the cycle.
    """
    def serve(environ, start_response):
        return _Answer(app(environ, start_response), environ)

    return serve


def _large_buffers_return_to_the_system() -> None:
    """Buffers of a megabyte and more are mapped for themselves and unmapped when freed.

    glibc raises its mapping threshold to the size of each large buffer freed, after which
    request bodies of 16 MiB come from the heap, whose freed space is seldom returned: over
    one 30 GiB image the emulator crept from 0.6 to 1.2 GB. A fixed threshold stops that.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 1 << 20)
    except (OSError, AttributeError):
        pass  # not glibc: its allocator has its own policy


# mallopt's parameter number for the mapping threshold (malloc.h).
_M_MMAP_THRESHOLD = -3


def _backend_app(service):
    """moto's Flask app for a service, out of Flask's debug mode.

    moto turns debug on, in which Flask gives every request's form data a class of its own
    whose method holds the request: a class is always in a reference cycle, so every
    request, body included, lived until a full collection.
    """
    app = create_backend_app(service)
    app.debug = False
    return app


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
        # The control planes are not AWS calls: neither delayed nor counted.
        if not path.startswith(("/moto-api", "/irf-lab/")):
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


class _RequestHandler(MotoRequestHandler):
    """moto's request handler, passing on the one header AWS names with an underscore.

    werkzeug drops every header whose name has an underscore (a proxy could not tell
    `X-Foo_Bar` from `X-Foo-Bar`), but the IAM Identity Center portal takes its bearer token
    in `x-amz-sso_bearer_token`, which the SDKs send as named.
    """

    def make_environ(self):
        environ = super().make_environ()
        token = self.headers.get("x-amz-sso_bearer_token")
        if token is not None:
            environ["HTTP_X_AMZ_SSO_BEARER_TOKEN"] = token
        return environ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--watch-stdin", action="store_true")
    parser.add_argument("--authorization", choices=("enforce", "audit", "off"), default="enforce")
    parser.add_argument("--node", default="node", help="the Node.js that runs the policy evaluator")
    parser.add_argument("--evaluator", help="authorize.js of the installed policy evaluator")
    parser.add_argument("--denial-log", help="where refused requests are recorded (JSON lines)")
    parser.add_argument("--restore-seconds", type=float, default=5.0,
                        help="how long an S3 restore of an archived object takes (hours in AWS)")
    parser.add_argument("--registration-seconds", type=float, default=8.0,
                        help="how long after it gets an instance profile an instance's SSM agent registers")
    parser.add_argument("--object-dir", help="where S3 objects' data is kept (default: the system's temporary directory)")
    args = parser.parse_args()

    # Step Functions SDK integrations call back into the emulator through this.
    os.environ["MOTO_PORT"] = str(args.port)
    if args.watch_stdin:
        _exit_when_stdin_closes()
    _require_existing_role()
    _account_access_role_is_admin()
    _bucket_policies_are_the_authorizers()
    _interface_groups_replace()
    _senders_are_stamped()
    _multipart_default_retention()
    _association_times()
    _large_buffers_return_to_the_system()
    lab_s3_fidelity.restores_take_time()
    lab_s3_fidelity.archived_metadata_is_readable()
    lab_s3_fidelity.part_checksums_are_listed()
    lab_s3_fidelity.objects_live_on_disk(args.object_dir)
    global _registration_seconds
    _registration_seconds = args.registration_seconds

    app = DomainDispatcherApplication(_backend_app)
    evaluator = args.evaluator or os.path.join(os.path.dirname(os.path.abspath(__file__)), "authorizer", "authorize.js")
    denial_log = args.denial_log or os.path.join(os.getcwd(), "denials.jsonl")
    authorizer = lab_authz.Authorizer(args.authorization, args.node, evaluator, denial_log)
    run_simple(
        args.host,
        args.port,
        _requests_are_freed(_Latency(_Authorization(_StandIns(app, args.restore_seconds), authorizer),
                                     args.latency_ms / 1000.0)),
        threaded=True,
        request_handler=_RequestHandler,
    )


if __name__ == "__main__":
    main()
