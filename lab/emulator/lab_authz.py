"""The lab authorizes every AWS request as AWS would, with the templates' own policies.

Each request is turned into what IAM evaluates: the principal (from the access key: an
assumed-role session, an IAM user, or the lab's own deployer key, which is the management
account's root), the IAM action(s), the resource ARN(s) and the request context. The policies
that apply are read from the emulator's state, where the templates put them (identity policies
of the role or user, the role's trust policy for sts:AssumeRole, bucket, queue and topic
policies), and the decision is made by @cloud-copilot/iam-simulate (authorizer/authorize.js),
a maintained evaluator of AWS's policy logic.

Which action, resource and context each operation means is one table, `authorization.json`
beside this file. An operation the table lacks is evaluated as `service:Operation` on "*" and
recorded as unmapped, so a principal without blanket rights is refused and the gap is named.

Modes: "enforce" refuses as AWS does (AccessDenied naming the action and the resource);
"audit" answers every request but records what enforce would refuse; "off" evaluates nothing
(for diagnosis only). Every refusal, or would-be refusal, is one JSON line in the denial log.
"""

import datetime
import json
import os
import re
import subprocess
import threading
import time
import uuid
from urllib.parse import parse_qs, unquote, urlparse

_HERE = os.path.dirname(os.path.abspath(__file__))
_CREDENTIAL = re.compile(r"Credential=([^/]+)/[0-9]+/([^/]+)/([^/]+)/")

# The lab's deployer key: the management account's root, as CloudFormation acts for a deployer.
DEPLOYER_KEY = "testing"
# The key moto's Step Functions interpreter signs its service integrations with.
STATES_INTERPRETER_KEY = "ak"

# How each service speaks, for the shape of a refusal.
_QUERY_XML = {"ec2", "iam", "sts", "sns", "autoscaling", "elasticloadbalancing", "cloudformation"}
_JSON = {"ssm", "dynamodb", "kms", "states", "sqs", "organizations", "logs", "events"}
_REST_JSON = {"ebs", "imagebuilder", "securityhub"}

# The tags Session Manager gives each session (aws:ssmmessages:session-id: its starter's user id),
# by session id; the emulator's session stand-in fills it.
SESSION_TAGS = {}

_ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


class Principal:
    """Who signed a request, with what the evaluation needs to know of them."""

    def __init__(self, arn, account, kind, identity_policies, context, session_policy=None, name=None):
        self.arn, self.account, self.kind = arn, account, kind
        self.identity_policies, self.context = identity_policies, context
        self.session_policy, self.name = session_policy, name
        # (region, VPC id) of an instance whose credentials these are, else None.
        self.vpc = None


def _policy_document(policy):
    """The default version's document of a moto managed policy."""
    for version in getattr(policy, "versions", []):
        if getattr(version, "is_default", False):
            return json.loads(version.document) if isinstance(version.document, str) else version.document
    document = getattr(policy, "document", "{}")
    return json.loads(document) if isinstance(document, str) else document


def _role_policies(role):
    policies = [{"name": f"inline:{name}", "policy": json.loads(doc) if isinstance(doc, str) else doc}
                for name, doc in role.policies.items()]
    policies += [{"name": arn, "policy": _policy_document(policy)} for arn, policy in role.managed_policies.items()]
    return policies


def organization_of(account):
    """The Organization id `account` belongs to, or None."""
    from moto.organizations.models import organizations_backends

    for backend in _all_backends(organizations_backends):
        org = getattr(backend, "org", None)
        if org is None:
            continue
        if account == org.master_account_id or any(a.id == account for a in backend.accounts):
            return org.id
    return None


def _all_backends(backends):
    found = []
    for account in list(backends.keys()):
        for region in list(backends[account].keys()):
            found.append(backends[account][region])
    return found


def identify(access_key):
    """The principal behind an access key, or None for a key AWS would not know."""
    from moto.iam.models import get_account_id_from, iam_backends
    from moto.sts.models import sts_backends

    if access_key == DEPLOYER_KEY:
        account = "123456789012"
        return Principal(f"arn:aws:iam::{account}:root", account, "root",
                         [{"name": "root", "policy": _ALLOW_ALL}],
                         _principal_context(f"arn:aws:iam::{account}:root", account, "Account", account))
    if access_key == STATES_INTERPRETER_KEY:
        return _state_machine_role()
    account = get_account_id_from(access_key)
    for session in sts_backends[account]["aws"].assumed_roles:
        if session.access_key_id != access_key:
            continue
        role_name = session.role_arn.split("/")[-1]
        role_account = session.role_arn.split(":")[4]
        try:
            role = iam_backends[role_account]["aws"].get_role(role_name)
        except Exception:
            return None
        arn = f"arn:aws:sts::{role_account}:assumed-role/{role_name}/{session.session_name}"
        context = _principal_context(role.arn, role_account, "AssumedRole", f"{role.id}:{session.session_name}")
        policy = json.loads(session.policy) if session.policy else None
        principal = Principal(arn, role_account, "assumed-role", _role_policies(role), context, policy,
                              session.session_name)
        # An instance's credentials (EC2 names the session after the instance): its calls leave
        # through its VPC, and so through that VPC's endpoints.
        if re.fullmatch(r"i-[0-9a-f]+", session.session_name or ""):
            principal.vpc = _instance_vpc(role_account, session.session_name)
        return principal
    for user in iam_backends[account]["aws"].users.values():
        if any(key.access_key_id == access_key for key in user.access_keys):
            policies = [{"name": f"inline:{n}", "policy": json.loads(d.policy_document if hasattr(d, 'policy_document') else d)}
                        for n, d in user.policies.items()]
            policies += [{"name": a, "policy": _policy_document(p)} for a, p in user.managed_policies.items()]
            context = _principal_context(user.arn, account, "User", user.id)
            context["aws:username"] = user.name
            return Principal(user.arn, account, "user", policies, context, name=user.name)
    return None


def _instance_vpc(account, instance_id):
    """(region, VPC id) of an instance of `account`, or None."""
    from moto.ec2.models import ec2_backends

    for region in list(ec2_backends[account].keys()):
        backend = ec2_backends[account][region]
        for reservation in list(backend.reservations.values()):
            for instance in reservation.instances:
                if instance.id == instance_id:
                    return region, instance.vpc_id
    return None


def endpoint_of(principal, service):
    """(endpoint id, VPC id, policy) of the gateway endpoint an instance's `service` calls pass
    through, or None when the caller is not an instance in a VPC with one."""
    if principal.vpc is None:
        return None
    from moto.ec2.models import ec2_backends

    region, vpc_id = principal.vpc
    backend = ec2_backends[principal.account][region]
    for endpoint in list(backend.vpc_end_points.values()):
        if endpoint.vpc_id == vpc_id and endpoint.service_name == f"com.amazonaws.{region}.{service}":
            document = endpoint.policy_document
            return endpoint.id, vpc_id, json.loads(document) if isinstance(document, str) else document
    return None


def _state_machine_role():
    """Step Functions acts with its state machine's role (the lab has one state machine)."""
    from moto.iam.models import iam_backends
    from moto.stepfunctions.models import stepfunctions_backends
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    # With its interpreter on, the emulator keeps state machines in the parser's backends.
    backends = _all_backends(stepfunctions_backends) + _all_backends(stepfunctions_parser_backends)
    roles = {m.roleArn for b in backends for m in b.state_machines}
    if len(roles) != 1:
        return None
    role_arn = roles.pop()
    account, name = role_arn.split(":")[4], role_arn.split("/")[-1]
    role = iam_backends[account]["aws"].get_role(name)
    session = "StepFunctions"
    arn = f"arn:aws:sts::{account}:assumed-role/{name}/{session}"
    context = _principal_context(role.arn, account, "AssumedRole", f"{role.id}:{session}")
    return Principal(arn, account, "assumed-role", _role_policies(role), context, name=session)


def _principal_context(principal_arn, account, kind, user_id):
    context = {
        "aws:PrincipalArn": principal_arn,
        "aws:PrincipalAccount": account,
        "aws:PrincipalType": kind,
        "aws:userid": user_id,
        # The lab listens on loopback over HTTP; it stands in for AWS's TLS endpoints, which
        # are the only ones irf's SDK clients use.
        "aws:SecureTransport": "true",
        "aws:CurrentTime": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aws:EpochTime": str(int(time.time())),
    }
    org = organization_of(account)
    if org:
        context["aws:PrincipalOrgID"] = org
    return context


class Evaluator:
    """The Node process that runs the evaluator; one request at a time, answers in order."""

    def __init__(self, node, script):
        self.lock = threading.Lock()
        self.command = [node, script]
        self.process = None
        self.next_id = 0

    def _start(self):
        self.process = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, cwd=os.path.dirname(self.command[1]))

    def decide(self, request):
        with self.lock:
            if self.process is None or self.process.poll() is not None:
                self._start()
            self.next_id += 1
            request = dict(request, id=self.next_id)
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        if not line:
            return {"decision": "Error", "error": "the policy evaluator stopped"}
        return json.loads(line)


def _load_table():
    with open(os.path.join(_HERE, "authorization.json"), encoding="utf-8") as f:
        table = json.load(f)
    return {key: value for key, value in table.items() if not key.startswith("_")}


class Request:
    """What the authorizer reads of one HTTP request."""

    def __init__(self, environ, body, service, region, access_key, presigned):
        self.environ, self.body, self.service, self.region = environ, body, service, region
        self.access_key, self.presigned = access_key, presigned
        self.method = environ.get("REQUEST_METHOD", "")
        self.path = environ.get("PATH_INFO", "")
        self.query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        self.form = {}
        self.json = {}
        content_type = environ.get("CONTENT_TYPE", "")
        if service in _QUERY_XML:
            self.form = dict(self.query)
            if body and "json" not in content_type:
                try:
                    self.form.update(parse_qs(body.decode(), keep_blank_values=True))
                except UnicodeDecodeError:
                    pass
        elif body and (service in _JSON or service in _REST_JSON):
            try:
                value = json.loads(body)
                self.json = value if isinstance(value, dict) else {}
            except ValueError:
                self.json = {}
        self.path_params = {}
        self.operation = self._operation()

    def header(self, name):
        return self.environ.get("HTTP_" + name.upper().replace("-", "_"))

    def _operation(self):
        if self.service in _QUERY_XML:
            return (self.form.get("Action") or [""])[0]
        if self.service in _JSON:
            target = self.header("X-Amz-Target") or ""
            return target.rsplit(".", 1)[-1]
        if self.service == "s3":
            return self._s3_operation()
        if self.service == "ebs":
            return self._ebs_operation()
        if self.service == "imagebuilder":
            return self.path.strip("/").split("/")[0]
        if self.service == "securityhub":
            return {("POST", "/findings"): "GetFindings", ("PATCH", "/findings/batchupdate"): "BatchUpdateFindings",
                    ("POST", "/findings/import"): "BatchImportFindings", ("POST", "/accounts"): "EnableSecurityHub",
                    ("GET", "/accounts"): "DescribeHub"}.get((self.method, self.path), "")
        return ""

    def _s3_operation(self):
        parts = self.path.lstrip("/").split("/", 1)
        bucket = unquote(parts[0]) if parts and parts[0] else ""
        key = unquote(parts[1]) if len(parts) > 1 else ""
        self.path_params = {"bucket": bucket, "key": key}
        q, m = self.query, self.method
        if not bucket:
            return "ListBuckets"
        if not key:
            for sub, ops in (("uploads", {"GET": "ListMultipartUploads"}), ("policy", {"GET": "GetBucketPolicy", "PUT": "PutBucketPolicy", "DELETE": "DeleteBucketPolicy"}),
                             ("object-lock", {"GET": "GetObjectLockConfiguration", "PUT": "PutObjectLockConfiguration"}),
                             ("versioning", {"GET": "GetBucketVersioning", "PUT": "PutBucketVersioning"}),
                             ("versions", {"GET": "ListObjectVersions"}), ("location", {"GET": "GetBucketLocation"}),
                             ("encryption", {"GET": "GetBucketEncryption", "PUT": "PutBucketEncryption"}),
                             ("lifecycle", {"GET": "GetBucketLifecycleConfiguration", "PUT": "PutBucketLifecycleConfiguration"}),
                             ("delete", {"POST": "DeleteObjects"})):
                if sub in q:
                    return ops.get(m, "")
            return {"GET": "ListObjectsV2" if q.get("list-type") == ["2"] else "ListObjects", "HEAD": "HeadBucket",
                    "PUT": "CreateBucket", "DELETE": "DeleteBucket"}.get(m, "")
        if "uploadId" in q:
            return {"PUT": "UploadPart", "GET": "ListParts", "POST": "CompleteMultipartUpload",
                    "DELETE": "AbortMultipartUpload"}.get(m, "")
        if "uploads" in q and m == "POST":
            return "CreateMultipartUpload"
        for sub, ops in (("legal-hold", {"GET": "GetObjectLegalHold", "PUT": "PutObjectLegalHold"}),
                         ("retention", {"GET": "GetObjectRetention", "PUT": "PutObjectRetention"}),
                         ("tagging", {"GET": "GetObjectTagging", "PUT": "PutObjectTagging"}),
                         ("attributes", {"GET": "GetObjectAttributes"}), ("restore", {"POST": "RestoreObject"})):
            if sub in q:
                return ops.get(m, "")
        versioned = "versionId" in q
        if m == "PUT":
            return "CopyObject" if self.header("x-amz-copy-source") else "PutObject"
        return {"GET": "GetObjectVersion" if versioned else "GetObject",
                "HEAD": "HeadObjectVersion" if versioned else "HeadObject",
                "DELETE": "DeleteObjectVersion" if versioned else "DeleteObject"}.get(m, "")

    def _ebs_operation(self):
        for pattern, method, name in ((r"^/snapshots/([^/]+)/blocks$", "GET", "ListSnapshotBlocks"),
                                      (r"^/snapshots/([^/]+)/blocks/([^/]+)$", "GET", "GetSnapshotBlock"),
                                      (r"^/snapshots/([^/]+)/blocks/([^/]+)$", "PUT", "PutSnapshotBlock"),
                                      (r"^/snapshots/([^/]+)/changedblocks$", "GET", "ListChangedBlocks"),
                                      (r"^/snapshots/completion/([^/]+)$", "POST", "CompleteSnapshot"),
                                      (r"^/snapshots$", "POST", "StartSnapshot")):
            match = re.match(pattern, self.path)
            if match and self.method == method:
                self.path_params = {"SnapshotId": match.group(1) if match.groups() else ""}
                return name
        return ""

    def values(self, name):
        """Every value the request gives for a parameter: form (Name, Name.N), JSON, path, header."""
        if name.startswith("header:"):
            value = self.header(name[7:])
            return [value] if value is not None else []
        if name in self.path_params:
            return [self.path_params[name]]
        if self.form:
            exact = self.form.get(name)
            if exact:
                return list(exact)
            numbered = sorted((int(m.group(1)), v[0]) for k, v in self.form.items()
                              if (m := re.fullmatch(re.escape(name) + r"\.([0-9]+)", k)))
            return [v for _, v in numbered]
        value = self.json.get(name)
        if value is None and name in self.query:
            return list(self.query[name])
        if value is None:
            return []
        return [str(v) for v in value] if isinstance(value, list) else [value if isinstance(value, str) else json.dumps(value)]


def request_tags(request):
    """The tags a request sets: Tag.N.Key/Value and TagSpecification.N.Tag.M.Key/Value (or JSON Tags)."""
    tags = {}
    for key, values in request.form.items():
        match = re.fullmatch(r"(?:TagSpecification\.[0-9]+\.)?Tag\.([0-9]+)\.Key", key)
        if match:
            value_key = key[:-len("Key")] + "Value"
            tags[values[0]] = (request.form.get(value_key) or [""])[0]
    for tag in request.json.get("Tags", []) if isinstance(request.json.get("Tags"), list) else []:
        if isinstance(tag, dict) and "Key" in tag:
            tags[tag["Key"]] = tag.get("Value", "")
    return tags


def _ec2_arn(resource_id, region, account):
    kinds = {"i-": "instance", "vol-": "volume", "sg-": "security-group", "eni-": "network-interface",
             "subnet-": "subnet", "vpc-": "vpc", "ami-": "image", "snap-": "snapshot", "vpce-": "vpc-endpoint"}
    for prefix, kind in kinds.items():
        if resource_id.startswith(prefix):
            owner = "" if kind in ("snapshot", "image") else account
            return f"arn:aws:ec2:{region}:{owner}:{kind}/{resource_id}"
    return f"arn:aws:ec2:{region}:{account}:resource/{resource_id}"


def _role_of_profile(name_or_arn, account):
    from moto.iam.models import iam_backends

    name = name_or_arn.rsplit("/", 1)[-1]
    owner = name_or_arn.split(":")[4] if name_or_arn.startswith("arn:") else account
    try:
        profile = iam_backends[owner]["aws"].get_instance_profile(name)
    except Exception:
        return []
    return [role.arn for role in profile.roles]


def _instance_of_association(association_id, region, account):
    from moto.ec2.models import ec2_backends

    association = ec2_backends[account][region].iam_instance_profile_associations.get(association_id)
    return [association.instance.id] if association is not None else []


def _partition_key(item_json, request, account):
    """The partition key's value of a DynamoDB Item or Key (what dynamodb:LeadingKeys holds)."""
    from moto.dynamodb.models import dynamodb_backends

    try:
        item = json.loads(item_json)
    except ValueError:
        return []
    for table_name in request.values("TableName"):
        table_account, region, name = account, request.region, table_name
        if table_name.startswith("arn:"):
            parts = table_name.split(":")
            table_account, region, name = parts[4], parts[3], parts[5].split("/", 1)[-1]
        try:
            table = dynamodb_backends[table_account][region].get_table(name)
        except Exception:
            return []
        value = item.get(table.hash_key_attr) if isinstance(item, dict) else None
        if isinstance(value, dict) and value:
            return [str(next(iter(value.values())))]
    return []


def _asg_arn(name, region, account):
    from moto.autoscaling.models import autoscaling_backends

    group = autoscaling_backends[account][region].autoscaling_groups.get(name)
    return [group.arn] if group is not None else [f"arn:aws:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/{name}"]


def _expand(template, request, account):
    """Every string a template names: `{Name}` placeholders expanded over the request's values."""
    names = re.findall(r"\{([^}]+)\}", template)
    results = [template]
    for name in names:
        base, _, suffix = name.partition(":") if not name.startswith("header:") else (name, "", "")
        if name.startswith("header:") and name.count(":") == 2:
            base, suffix = name.rsplit(":", 1)
        if name == "region":
            values = [request.region]
        elif name == "account":
            values = [account]
        elif name == "request_tag_keys":
            values = sorted(request_tags(request))
        else:
            values = request.values(base)
            if suffix == "name":
                values = [v.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1] for v in values]
            elif suffix == "ec2_arn":
                values = [_ec2_arn(v, request.region, account) for v in values]
            elif suffix == "role_of_profile":
                values = [arn for v in values for arn in _role_of_profile(v, account)]
            elif suffix == "instance_of_association":
                values = [i for v in values for i in _instance_of_association(v, request.region, account)]
            elif suffix == "table_arn":
                # DynamoDB takes a table's name or its ARN (another account's table, by ARN).
                values = [v if v.startswith("arn:") else f"arn:aws:dynamodb:{request.region}:{account}:table/{v}"
                          for v in values]
            elif suffix == "kms_key_arn":
                # A key id or ARN (an alias is not resolved: irf names keys by ARN).
                values = [v if v.startswith("arn:") else f"arn:aws:kms:{request.region}:{account}:key/{v}"
                          for v in values]
            elif suffix == "asg_arn":
                values = [arn for v in values for arn in _asg_arn(v, request.region, account)]
            elif suffix == "partition_key":
                values = [k for v in values for k in _partition_key(v, request, account)]
            elif suffix == "s3_source":
                values = ["arn:aws:s3:::" + unquote(v).lstrip("/").split("?", 1)[0] for v in values]
        if not values:
            return []
        if template == "{" + name + "}" and name == "request_tag_keys":
            return values
        results = [r.replace("{" + name + "}", v, 1) for r in results for v in values]
    return results


class Authorizer:
    """Decides requests; keeps counts and the denial log."""

    def __init__(self, mode, node, script, log_path):
        if mode not in ("enforce", "audit", "off"):
            raise ValueError(f"authorization mode {mode!r}: use enforce, audit or off")
        self.mode = mode
        self.evaluator = Evaluator(node, script)
        self.table = _load_table()
        self.log_path = log_path
        self.lock = threading.Lock()
        self.counts = {"allowed": 0, "refused": 0, "unmapped": 0, "evaluations": 0, "seconds": 0.0}
        self.unmapped_operations = set()

    def status(self):
        """The mode, the counts of requests allowed and refused, and where refusals are logged."""
        with self.lock:
            return {"mode": self.mode, **self.counts, "denial_log": self.log_path,
                    "unmapped_operations": sorted(self.unmapped_operations)}

    def write_status(self):
        """Writes the counts beside the denial log (authorization.json), for a run's figures."""
        path = os.path.join(os.path.dirname(self.log_path) or ".", "authorization.json")
        staged = f"{path}.{os.getpid()}.tmp"
        with open(staged, "w", encoding="utf-8") as f:
            json.dump(self.status(), f)
        os.replace(staged, path)

    def set_mode(self, mode):
        if mode not in ("enforce", "audit", "off"):
            raise ValueError(f"authorization mode {mode!r}: use enforce, audit or off")
        self.mode = mode

    def _record(self, entry):
        with self.lock:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")

    def record_unknown_key(self, access_key, request, message):
        """Records a request signed with a key no account knows (AWS: InvalidClientTokenId)."""
        with self.lock:
            self.counts["refused"] += 1
        self._record({"time": datetime.datetime.now(datetime.timezone.utc).isoformat(), "mode": self.mode,
                      "principal": f"unknown access key {access_key}",
                      "operation": f"{request.service}:{request.operation}", "action": None,
                      "resource": None, "decision": "InvalidClientTokenId", "unmapped": False,
                      "reasons": None, "message": message})

    def checks(self, principal, request):
        """(action, resource, resource account, resource policy, context) for each evaluation."""
        from moto.iam.models import get_account_id_from

        account = principal.account if principal.kind != "root" else get_account_id_from(request.access_key)
        key = f"{request.service}:{request.operation}"
        rule = self.table.get(key)
        if rule is None:
            return [(key, "*", account, None, {}, True)]
        checks = []
        for item in rule if isinstance(rule, list) else [rule]:
            when = item.get("when")
            tags = request_tags(request)
            if when == "request_tags" and not tags:
                continue
            if when == "session_tags" and not tags:
                continue
            if when == "source_identity" and not request.values("SourceIdentity"):
                continue
            context = {}
            for context_key, template in item.get("context", {}).items():
                if context_key == "aws:RequestTag/*":
                    context.update({f"aws:RequestTag/{k}": v for k, v in tags.items()})
                    continue
                values = _expand(template, request, account)
                if values:
                    context[context_key] = values if item.get("multi", {}).get(context_key) else values[0]
            resources = []
            for template in item.get("resources", ["*"]):
                resources.extend(_expand(template, request, account) if template != "*" else ["*"])
            if not resources and item.get("optional"):
                continue
            if not resources:
                resources = ["*"]
            for resource in resources:
                policy, owner = _resource_policy(item.get("policy"), resource, request, account)
                extra = dict(context)
                extra.update(_resource_context(resource, request, account))
                if owner:
                    extra["aws:ResourceAccount"] = owner
                    org = organization_of(owner)
                    if org:
                        extra["aws:ResourceOrgID"] = org
                checks.append((item["action"], resource, owner, policy, extra, False))
        # S3's own use of the object's key on the caller's behalf comes after S3 allows the call.
        return checks + _s3_key_checks(request, principal)

    def evaluate(self, principal, request, action, resource, owner, policy, context):
        """The evaluator's answer for one action on one resource, with every policy that applies."""
        simulation = {
            "principal": principal.arn, "action": action, "resource": resource,
            "resourceAccount": owner, "context": {**principal.context, **context},
            "identityPolicies": principal.identity_policies,
        }
        if policy is not None:
            simulation["resourcePolicy"] = policy
        if principal.session_policy is not None:
            simulation["sessionPolicy"] = principal.session_policy
        # The endpoint sees the caller's own calls to its service, not the calls that service
        # then makes on the caller's behalf (S3 to KMS).
        endpoint = endpoint_of(principal, request.service) if action.startswith(request.service + ":") else None
        if endpoint is not None:
            endpoint_id, vpc_id, endpoint_policy = endpoint
            simulation["vpcEndpointPolicies"] = [{"name": endpoint_id, "policy": endpoint_policy}]
            simulation["context"].update({"aws:SourceVpce": endpoint_id, "aws:SourceVpc": vpc_id})
        return self.evaluator.decide(simulation)

    def refuse(self, principal, request, action, resource, answer, reason, unmapped=False):
        """Records a refusal in the denial log; the AccessDenied message when enforcing, else None."""
        message = f"User: {principal.arn} is not authorized to perform: {action} on resource: {resource} {reason}"
        self._record({
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(), "mode": self.mode,
            "principal": principal.arn, "operation": f"{request.service}:{request.operation}",
            "action": action, "resource": resource, "decision": answer.get("decision"),
            "unmapped": unmapped,
            "reasons": answer.get("reasons") or answer.get("error"), "message": message,
        })
        return message if self.mode == "enforce" else None

    def authorize(self, principal, request):
        """None when allowed (or not enforced), else the AccessDenied message naming action and resource."""
        if self.mode == "off":
            return None
        started = time.monotonic()
        refusal = None
        for action, resource, owner, policy, context, unmapped in self.checks(principal, request):
            answer = self.evaluate(principal, request, action, resource, owner, policy, context)
            with self.lock:
                self.counts["evaluations"] += 1
                if unmapped:
                    self.counts["unmapped"] += 1
                    self.unmapped_operations.add(f"{request.service}:{request.operation}")
            if answer.get("decision") == "Allowed":
                continue
            if answer.get("decision") == "Error" and resource == "*" and not unmapped:
                continue
            refusal = (action, resource, answer, unmapped)
            break
        with self.lock:
            self.counts["seconds"] += time.monotonic() - started
            self.counts["refused" if refusal else "allowed"] += 1
            decided = self.counts["allowed"] + self.counts["refused"]
        if decided % 100 == 0:
            self.write_status()
        if refusal is None:
            return None
        action, resource, answer, unmapped = refusal
        return self.refuse(principal, request, action, resource, answer, _reason(action, answer, unmapped), unmapped)


_READS = ("GetObject", "HeadObject", "GetObjectVersion", "HeadObjectVersion")


def hides_missing_key(authorizer, principal, request):
    """The AccessDenied S3 answers for a missing key to a caller without s3:ListBucket, or None.

    S3 answers 404 for a key that does not exist only to callers allowed to list the bucket;
    to everyone else it answers 403, so that they learn nothing of what the bucket holds.
    """
    if request.service != "s3" or request.operation not in _READS or authorizer.mode == "off":
        return None
    bucket = find_bucket(request.path_params.get("bucket"))
    key = request.path_params.get("key")
    if bucket is None or bucket.keys.get(key) is not None:
        return None
    resource = f"arn:aws:s3:::{bucket.name}"
    answer = authorizer.evaluate(principal, request, "s3:ListBucket", resource, bucket.account_id,
                                 json.loads(bucket.policy) if bucket.policy else None, {})
    if answer.get("decision") == "Allowed":
        return None
    return authorizer.refuse(principal, request, "s3:ListBucket", resource, answer,
                             f"because no policy allows it: S3 answers AccessDenied, not NoSuchKey, "
                             f"for the missing key {key!r}")


def _reason(action, answer, unmapped):
    if unmapped:
        return (f"because the lab has no authorization rule for this operation "
                f"(add it to lab/emulator/authorization.json)")
    if answer.get("decision") == "ExplicitlyDenied":
        kinds = sorted({r.get("policyType", "identity") for r in answer.get("reasons") or []}) or ["identity"]
        return f"with an explicit deny in a {kinds[0]}-based policy"
    if answer.get("decision") == "Error":
        return f"because the lab could not evaluate it ({answer.get('error')})"
    if "vpce" in (answer.get("blockedBy") or []):
        return f"because no VPC endpoint policy allows the {action} action"
    if answer.get("identityResult") not in (None, "Allowed"):
        return f"because no identity-based policy allows the {action} action"
    return f"because no resource-based policy allows the {action} action"


# S3 operations that use the object's KMS key on the caller's behalf, and the key actions they
# need: writes make a data key, multipart uploads also decrypt it for each part and at the end,
# reads decrypt it (HeadObject reads metadata only).
_S3_KEY_USE = {
    "PutObject": ("kms:GenerateDataKey",),
    "CreateMultipartUpload": ("kms:GenerateDataKey", "kms:Decrypt"),
    "UploadPart": ("kms:GenerateDataKey", "kms:Decrypt"),
    "CompleteMultipartUpload": ("kms:Decrypt",),
    "GetObject": ("kms:Decrypt",),
    "GetObjectVersion": ("kms:Decrypt",),
}


def _s3_key_checks(request, principal):
    """The KMS evaluations S3 makes with the caller's identity for an SSE-KMS object: the key
    named in the request, else the object's, else the bucket's default; with kms:ViaService."""
    if request.service != "s3" or request.operation not in _S3_KEY_USE:
        return []
    from moto.kms.models import kms_backends

    bucket_name, object_key = request.path_params.get("bucket"), request.path_params.get("key")
    bucket = find_bucket(bucket_name)
    if bucket is None:
        return []
    key_id = None
    if (request.header("x-amz-server-side-encryption") or "") == "aws:kms":
        key_id = request.header("x-amz-server-side-encryption-aws-kms-key-id")
    if key_id is None and request.operation in ("GetObject", "GetObjectVersion"):
        stored = bucket.keys.get(object_key)
        if stored is not None and getattr(stored, "encryption", None) == "aws:kms":
            key_id = stored.kms_key_id
    if key_id is None:
        default = ((bucket.encryption or {}).get("Rule") or {}).get("ApplyServerSideEncryptionByDefault") or {}
        if default.get("SSEAlgorithm") == "aws:kms":
            key_id = default.get("KMSMasterKeyID")
    if not key_id or not key_id.startswith("arn:"):
        return []  # an AWS managed key (aws/s3): its policy lets the account's principals use it
    parts = key_id.split(":")
    region, owner, key_uuid = parts[3], parts[4], parts[5].split("/")[-1]
    key = kms_backends[owner][region].keys.get(key_uuid)
    policy = json.loads(key.policy) if key is not None and key.policy else None
    context = {
        "kms:ViaService": f"s3.{request.region}.amazonaws.com",
        "kms:CallerAccount": principal.account,
        "kms:EncryptionContext:aws:s3:arn": f"arn:aws:s3:::{bucket_name}",
    }
    return [(action, key_id, owner, policy, dict(context), False) for action in _S3_KEY_USE[request.operation]]


def find_bucket(name):
    """The emulator's bucket `name`, in whichever account owns it, or None."""
    from moto.s3.models import s3_backends

    for account in list(s3_backends.keys()):
        bucket = s3_backends[account]["aws"].buckets.get(name)
        if bucket is not None:
            return bucket
    return None


def _resource_policy(kind, resource, request, account):
    """(policy document or None, owner account) of the resource a check names."""
    if kind == "bucket":
        bucket = find_bucket(resource.split(":::", 1)[-1].split("/", 1)[0])
        if bucket is None:
            return None, account
        return (json.loads(bucket.policy) if bucket.policy else None), bucket.account_id
    if kind == "trust":
        from moto.iam.models import iam_backends

        parts = resource.split(":")
        owner, name = parts[4], resource.split("/")[-1]
        try:
            role = iam_backends[owner]["aws"].get_role(name)
        except Exception:
            return None, owner
        return json.loads(role.assume_role_policy_document), owner
    if kind == "queue":
        from moto.sqs.models import sqs_backends

        parts = resource.split(":")
        queue = sqs_backends[parts[4]][parts[3]].queues.get(parts[5])
        policy = getattr(queue, "policy", None)
        return (json.loads(policy) if isinstance(policy, str) else policy), parts[4]
    if kind == "topic":
        from moto.sns.models import sns_backends

        parts = resource.split(":")
        topic = sns_backends[parts[4]][parts[3]].topics.get(resource)
        return (json.loads(topic.policy) if topic is not None else None), parts[4]
    if kind == "key":
        from moto.kms.models import kms_backends

        parts = resource.split(":")
        key = kms_backends[parts[4]][parts[3]].keys.get(parts[5].split("/")[-1])
        return (json.loads(key.policy) if key is not None and key.policy else None), parts[4]
    parts = resource.split(":")
    owner = parts[4] if len(parts) > 4 and parts[4] else account
    return None, owner


def _resource_context(resource, request, account):
    """Tags of the EC2 resource a check names, as ec2:, aws: and ssm: resource tag keys.

    Snapshot and image ARNs carry no account: they are looked up in the caller's. A Session
    Manager session's tags are those the service gave it.
    """
    session = re.match(r"^arn:aws:ssm:[^:]*:[^:]*:session/(.+)$", resource)
    if session:
        tags = SESSION_TAGS.get(session.group(1), {})
        return {f"ssm:resourceTag/{k}": v for k, v in tags.items()} | {f"aws:ResourceTag/{k}": v for k, v in tags.items()}
    match = re.match(r"^arn:aws:ec2:([^:]*):([^:]*):([a-z-]+)/(.+)$", resource)
    if not match or "*" in resource:
        return {}
    from moto.ec2.models import ec2_backends

    region, owner, kind, resource_id = match.groups()
    region = region or request.region
    backend = ec2_backends[owner or account][region]
    tags = backend.tags.get(resource_id, {})
    context = {}
    try:
        if kind == "image":
            context["ec2:Owner"] = backend.describe_images(ami_ids=[resource_id])[0].owner_id
        elif kind == "subnet":
            vpc = backend.get_subnet(resource_id).vpc_id
            context["ec2:Vpc"] = f"arn:aws:ec2:{region}:{owner or account}:vpc/{vpc}"
        elif kind == "security-group":
            vpc = backend.get_security_group_from_id(resource_id).vpc_id
            context["ec2:Vpc"] = f"arn:aws:ec2:{region}:{owner or account}:vpc/{vpc}"
    except Exception:  # a resource that does not exist: EC2 itself answers for it
        pass
    for key, value in tags.items():
        context[f"aws:ResourceTag/{key}"] = value
        context[f"ec2:ResourceTag/{key}"] = value
        context[f"ssm:resourceTag/{key}"] = value
    return context


def refusal_response(service, message):
    """(status, headers, body) of an AccessDenied in the service's own protocol."""
    request_id = str(uuid.uuid4())
    if service == "ec2":
        body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>UnauthorizedOperation</Code>"
                f"<Message>{_xml(message)}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>")
        return "403 Forbidden", [("Content-Type", "text/xml")], body.encode()
    if service in _QUERY_XML:
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>{_xml(message)}</Message>"
                f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>")
        return "403 Forbidden", [("Content-Type", "text/xml")], body.encode()
    if service == "s3":
        body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>{_xml(message)}</Message>"
                f"<RequestId>{request_id}</RequestId></Error>")
        return "403 Forbidden", [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)], body.encode()
    if service in _JSON:
        code = "AccessDenied" if service == "sqs" else "AccessDeniedException"
        body = json.dumps({"__type": code, "message": message, "Message": message})
        return "400 Bad Request", [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", request_id)], body.encode()
    body = json.dumps({"message": message, "Message": message})
    return "403 Forbidden", [("Content-Type", "application/json"), ("x-amzn-ErrorType", "AccessDeniedException"),
                             ("x-amzn-RequestId", request_id)], body.encode()


def _xml(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def signer(environ):
    """(access key, region, service, presigned) of a SigV4 request, or None when unsigned."""
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match:
        return (*match.groups(), False)
    query = parse_qs(environ.get("QUERY_STRING", ""))
    credential = (query.get("X-Amz-Credential") or [""])[0]
    parts = credential.split("/")
    if len(parts) >= 5:
        return parts[0], parts[2], parts[3], True
    return None
