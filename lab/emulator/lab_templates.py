"""The lab's deployments of irf's own CloudFormation templates.

The lab's identities and policies are the templates': each template is rendered with the lab's
account ids, region and parameters (every intrinsic function the templates use resolved), and
its policy-bearing resources are created in the emulator exactly as rendered: IAM roles with
their trust and inline policies, customer managed policies, role policies, instance profiles,
bucket, queue and topic policies. Nothing here writes a policy of its own.

Resources of other types are not created by the renderer: the lab seeds them itself (buckets,
queues, the case table, VPCs) under the names the templates give, and a deployment names their
physical ids (`physical` in the request), which Ref and Fn::GetAtt then resolve to. A policy
for a resource the lab has not made (the access-log bucket, a CloudTrail key) is reported as
skipped, never silently dropped.

cfn-lint's loader (already pinned for template checks) reads the YAML and its short-form tags;
the resolver below is the small part no maintained library does right for this purpose (cloud-radar
turns AWS::NoValue into "" inside policy statements and needs network for Fn::GetAZs).
"""

import json
import re

from cfnlint.decode.cfn_yaml import loads as load_yaml

_NO_VALUE = object()

# The property that names a resource of each type, where the template may set it.
_NAME_PROPERTY = {
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::Events::Rule": "Name",
    "AWS::Events::EventBus": "Name",
}


class TemplateError(Exception):
    """A template that cannot be rendered as asked: the message names the value at fault."""


def _plain(node):
    return json.loads(json.dumps(node))


class Stack:
    """One template rendered for one account and region."""

    def __init__(self, name, text, parameters, account, region, physical, organization_azs=None):
        try:
            self.template = _plain(load_yaml(text))
        except Exception as err:  # the loader raises several kinds; all mean "not a template"
            raise TemplateError(f"template {name!r} does not parse: {err}")
        self.name, self.account, self.region = name, account, region
        self.physical_given = physical
        self.azs = organization_azs or [f"{region}{zone}" for zone in "abc"]
        self.pseudo = {
            "AWS::AccountId": account,
            "AWS::Region": region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": name,
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{account}:stack/{name}/lab",
            "AWS::NotificationARNs": [],
        }
        self.parameters = self._parameters(parameters)
        self._conditions, self._properties, self._physical, self._resolving = {}, {}, {}, set()

    def _parameters(self, given):
        declared = self.template.get("Parameters", {})
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise TemplateError(f"template {self.name!r} has no parameter {unknown[0]!r}")
        values = {}
        for key, declaration in declared.items():
            if key in given:
                value = given[key]
            elif "Default" in declaration:
                value = declaration["Default"]
            else:
                raise TemplateError(f"template {self.name!r}: parameter {key!r} needs a value")
            kind = declaration.get("Type", "String")
            if kind == "CommaDelimitedList" or kind.startswith("List<"):
                value = value if isinstance(value, list) else [v for v in str(value).split(",")]
            else:
                value = str(value)
                allowed = declaration.get("AllowedValues")
                if allowed is not None and value not in [str(a) for a in allowed]:
                    raise TemplateError(
                        f"template {self.name!r}: parameter {key}={value!r} is not one of {allowed}")
                pattern = declaration.get("AllowedPattern")
                if pattern is not None and value and not re.fullmatch(pattern, value):
                    raise TemplateError(
                        f"template {self.name!r}: parameter {key}={value!r} does not match {pattern}")
            values[key] = value
        return values

    def condition(self, name):
        if name not in self._conditions:
            conditions = self.template.get("Conditions", {})
            if name not in conditions:
                raise TemplateError(f"template {self.name!r} has no condition {name!r}")
            self._conditions[name] = bool(self.resolve(conditions[name]))
        return self._conditions[name]

    def exists(self, logical_id):
        resource = self.template["Resources"][logical_id]
        return "Condition" not in resource or self.condition(resource["Condition"])

    def properties(self, logical_id):
        if logical_id not in self._properties:
            if logical_id in self._resolving:
                raise TemplateError(f"template {self.name!r}: {logical_id} refers to itself")
            self._resolving.add(logical_id)
            try:
                body = self.template["Resources"][logical_id].get("Properties", {})
                self._properties[logical_id] = self.resolve(body)
            finally:
                self._resolving.discard(logical_id)
        return self._properties[logical_id]

    def kind(self, logical_id):
        return self.template["Resources"][logical_id]["Type"]

    def physical(self, logical_id):
        """(Ref value, attributes) of a resource: as the lab named it, else as AWS would."""
        if logical_id not in self.template.get("Resources", {}):
            raise TemplateError(f"template {self.name!r} has no resource {logical_id!r}")
        if not self.exists(logical_id):
            raise TemplateError(f"template {self.name!r}: {logical_id} is not created here (its condition is false)")
        if logical_id not in self._physical:
            given = self.physical_given.get(logical_id)
            if given is not None:
                self._physical[logical_id] = (given.get("ref"), dict(given.get("attributes", {})))
            else:
                self._physical[logical_id] = self._default_physical(logical_id)
        return self._physical[logical_id]

    def _default_physical(self, logical_id):
        kind = self.kind(logical_id)
        props = self.properties(logical_id)
        name = props.get(_NAME_PROPERTY.get(kind, ""), None) or f"{self.name}-{logical_id}"
        account, region = self.account, self.region
        arns = {
            "AWS::IAM::Role": f"arn:aws:iam::{account}:role{props.get('Path', '/')}{name}",
            "AWS::IAM::InstanceProfile": f"arn:aws:iam::{account}:instance-profile{props.get('Path', '/')}{name}",
            "AWS::IAM::ManagedPolicy": f"arn:aws:iam::{account}:policy{props.get('Path', '/')}{name}",
            "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{region}:{account}:{name}",
            "AWS::SNS::Topic": f"arn:aws:sns:{region}:{account}:{name}",
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{region}:{account}:table/{name}",
            "AWS::Lambda::Function": f"arn:aws:lambda:{region}:{account}:function:{name}",
            "AWS::StepFunctions::StateMachine": f"arn:aws:states:{region}:{account}:stateMachine:{name}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{region}:{account}:log-group:{name}:*",
            "AWS::Events::Rule": f"arn:aws:events:{region}:{account}:rule/{name}",
            "AWS::Events::EventBus": f"arn:aws:events:{region}:{account}:event-bus/{name}",
            "AWS::KMS::Key": f"arn:aws:kms:{region}:{account}:key/{logical_id.lower()}",
        }
        ref_is_arn = kind in ("AWS::IAM::ManagedPolicy", "AWS::SNS::Topic", "AWS::StepFunctions::StateMachine")
        arn = arns.get(kind)
        ref = arn if ref_is_arn and arn else name
        if kind == "AWS::SQS::Queue":
            ref = f"https://sqs.{region}.amazonaws.com/{account}/{name}"
        attributes = {"Arn": arn} if arn else {}
        if kind == "AWS::IAM::Role":
            attributes["RoleId"] = f"AROA{logical_id.upper()[:17]}"
        if kind == "AWS::EC2::VPC":
            attributes["CidrBlock"] = props.get("CidrBlock")
        if kind == "AWS::EC2::EIP":
            attributes["AllocationId"] = f"eipalloc-{logical_id.lower()}"
        return ref, attributes

    def ref(self, name):
        if name in self.pseudo:
            return self.pseudo[name]
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.parameters:
            return self.parameters[name]
        return self.physical(name)[0]

    def get_att(self, logical_id, attribute):
        attributes = self.physical(logical_id)[1]
        if attribute not in attributes:
            raise TemplateError(
                f"template {self.name!r}: Fn::GetAtt {logical_id}.{attribute} has no value in the lab "
                f"(name it in the deployment's physical ids)")
        return attributes[attribute]

    def _sub(self, text, variables):
        def replace(match):
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                value = variables[name]
            elif "." in name and not name.startswith("AWS::"):
                value = self.get_att(*name.split(".", 1))
            else:
                value = self.ref(name)
            if isinstance(value, list) or value is _NO_VALUE:
                raise TemplateError(f"template {self.name!r}: Fn::Sub of ${{{name}}}, which is not a string")
            return str(value)

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def resolve(self, node):
        if isinstance(node, list):
            return [item for item in (self.resolve(i) for i in node) if item is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            if key == "Ref":
                return self.ref(value)
            if key == "Condition" and isinstance(value, str):
                return self.condition(value)
            if key == "Fn::If":
                return self.resolve(value[1] if self.condition(value[0]) else value[2])
            if key.startswith("Fn::"):
                return self._function(key, self.resolve(value))
        resolved = {}
        for key, value in node.items():
            value = self.resolve(value)
            if value is not _NO_VALUE:
                resolved[key] = value
        return resolved

    def _function(self, name, args):
        if name == "Fn::Sub":
            return self._sub(args, {}) if isinstance(args, str) else self._sub(args[0], args[1])
        if name == "Fn::GetAtt":
            logical_id, attribute = args if isinstance(args, list) else args.split(".", 1)
            return self.get_att(logical_id, attribute)
        if name == "Fn::Join":
            return args[0].join(str(item) for item in args[1])
        if name == "Fn::Select":
            return args[1][int(args[0])]
        if name == "Fn::Split":
            return args[1].split(args[0])
        if name == "Fn::Equals":
            return str(args[0]) == str(args[1])
        if name == "Fn::Not":
            return not args[0]
        if name == "Fn::And":
            return all(args)
        if name == "Fn::Or":
            return any(args)
        if name == "Fn::GetAZs":
            return list(self.azs)
        if name == "Fn::FindInMap":
            return self.template["Mappings"][args[0]][args[1]][args[2]]
        raise TemplateError(f"template {self.name!r} uses {name}, which the lab's renderer does not resolve")

    def resources(self):
        """(logical id, type, resolved properties) of every resource this deployment creates."""
        for logical_id, resource in self.template.get("Resources", {}).items():
            if self.exists(logical_id):
                yield logical_id, resource["Type"], self.properties(logical_id)

    def outputs(self):
        outputs = {}
        for key, output in self.template.get("Outputs", {}).items():
            if "Condition" in output and not self.condition(output["Condition"]):
                continue
            outputs[key] = self.resolve(output["Value"])
        return outputs


def attach_aws_managed(account, role, arn):
    """Attaches an AWS managed policy (arn:aws:iam::aws:policy/...) to a role of `account`."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data
    from moto.iam.models import AWSManagedPolicy, iam_backends

    backend = iam_backends[account]["aws"]
    if arn not in backend.managed_policies:
        name = arn.rsplit("/", 1)[-1]
        data = json.loads(aws_managed_policies_data).get(name)
        if data is None:
            raise TemplateError(f"{arn} is not an AWS managed policy the emulator knows")
        backend.managed_policies[arn] = AWSManagedPolicy.from_data(name, account, "us-east-1", data)
    backend.attach_role_policy(arn, role)


def _document(value):
    return value if isinstance(value, str) else json.dumps(value)


class Deployer:
    """Creates a rendered template's policy-bearing resources in the emulator's backends."""

    def deploy(self, request):
        for field in ("name", "template", "account", "region"):
            if not isinstance(request.get(field), str) or not request[field]:
                raise TemplateError(f"a deployment needs {field!r} (a non-empty string)")
        stack = Stack(request["name"], request["template"], request.get("parameters") or {},
                      request["account"], request["region"], request.get("physical") or {})
        only = request.get("only")
        self._create_keys(stack)
        created, skipped = [], []
        # Roles and managed policies first: profiles, role policies and attachments name them.
        order = {"AWS::IAM::Role": 0, "AWS::IAM::ManagedPolicy": 1}
        rendered = sorted(stack.resources(), key=lambda r: order.get(r[1], 2))
        for logical_id, kind, props in rendered:
            if only is not None and logical_id not in only:
                continue
            handler = getattr(self, "_" + kind.replace("::", "_"), None)
            if handler is None:
                continue
            outcome = handler(stack, logical_id, props)
            (skipped if outcome else created).append(
                {"logical_id": logical_id, "type": kind, **({"why": outcome} if outcome else {})})
        for logical_id, kind, props in rendered:
            if kind != "AWS::IAM::Role" or (only is not None and logical_id not in only):
                continue
            role = stack.ref(logical_id)
            for arn in props.get("ManagedPolicyArns", []):
                if arn.startswith("arn:aws:iam::aws:policy/"):
                    attach_aws_managed(stack.account, role, arn)
                else:
                    self._iam(stack.account).attach_role_policy(arn, role)
        # What the lab runtime needs to run functions as Lambda would: their time limits.
        functions = {logical_id: int(props.get("Timeout", 3))
                     for logical_id, kind, props in rendered if kind == "AWS::Lambda::Function"}
        return {"created": created, "skipped": skipped, "outputs": stack.outputs(),
                "functions": functions}

    @staticmethod
    def _iam(account):
        from moto.iam.models import iam_backends

        return iam_backends[account]["aws"]

    def _AWS_IAM_Role(self, stack, logical_id, props):
        backend = self._iam(stack.account)
        name = stack.ref(logical_id)
        backend.create_role(
            role_name=name,
            assume_role_policy_document=_document(props["AssumeRolePolicyDocument"]),
            path=props.get("Path", "/"),
            permissions_boundary=props.get("PermissionsBoundary"),
            description=props.get("Description", ""),
            tags=props.get("Tags", []),
            max_session_duration=str(props.get("MaxSessionDuration", 3600)),
        )
        for policy in props.get("Policies", []):
            backend.put_role_policy(name, policy["PolicyName"], _document(policy["PolicyDocument"]))
        # Managed policies attach once the stack's own ones exist (see deploy).
        return None

    def _AWS_IAM_ManagedPolicy(self, stack, logical_id, props):
        backend = self._iam(stack.account)
        name = props.get("ManagedPolicyName") or f"{stack.name}-{logical_id}"
        policy = backend.create_policy(
            description=props.get("Description", ""), path=props.get("Path", "/"),
            policy_document=_document(props["PolicyDocument"]), policy_name=name, tags=[])
        for role in props.get("Roles", []):
            backend.attach_role_policy(policy.arn, role)
        return None

    def _AWS_IAM_RolePolicy(self, stack, logical_id, props):
        self._iam(stack.account).put_role_policy(
            props["RoleName"], props["PolicyName"], _document(props["PolicyDocument"]))
        return None

    def _AWS_IAM_Policy(self, stack, logical_id, props):
        backend = self._iam(stack.account)
        for role in props.get("Roles", []):
            backend.put_role_policy(role, props["PolicyName"], _document(props["PolicyDocument"]))
        return None

    def _AWS_IAM_InstanceProfile(self, stack, logical_id, props):
        backend = self._iam(stack.account)
        name = stack.ref(logical_id)
        backend.create_instance_profile(name=name, path=props.get("Path", "/"), role_names=[], tags=[])
        for role in props.get("Roles", []):
            backend.add_role_to_instance_profile(name, role)
        return None

    def _AWS_S3_BucketPolicy(self, stack, logical_id, props):
        from moto.s3.models import s3_backends

        backend = s3_backends[stack.account]["aws"]
        bucket = props["Bucket"]
        if bucket not in backend.buckets:
            return f"the lab has no bucket {bucket!r}"
        backend.put_bucket_policy(bucket, _document(props["PolicyDocument"]).encode())
        return None

    def _AWS_SQS_QueuePolicy(self, stack, logical_id, props):
        from moto.sqs.models import sqs_backends

        backend = sqs_backends[stack.account][stack.region]
        missing = []
        for url in props.get("Queues", []):
            name = url.rstrip("/").rsplit("/", 1)[-1]
            if name not in backend.queues:
                missing.append(name)
                continue
            backend.queues[name].policy = _document(props["PolicyDocument"])
        return f"the lab has no queue {missing[0]!r}" if missing else None

    def _AWS_SNS_TopicPolicy(self, stack, logical_id, props):
        from moto.sns.models import sns_backends

        backend = sns_backends[stack.account][stack.region]
        for arn in props.get("Topics", []):
            if arn not in backend.topics:
                return f"the lab has no topic {arn!r}"
            backend.topics[arn].policy = _document(props["PolicyDocument"])
        return None

    def _AWS_EC2_VPCEndpoint(self, stack, logical_id, props):
        if "PolicyDocument" not in props:
            return None
        from moto.ec2.models import ec2_backends

        backend = ec2_backends[stack.account][stack.region]
        for endpoint in backend.vpc_end_points.values():
            if endpoint.vpc_id == props.get("VpcId") and endpoint.service_name == props.get("ServiceName"):
                endpoint.policy_document = _document(props["PolicyDocument"])
                return None
        return f"the lab has no {props.get('ServiceName')} endpoint in {props.get('VpcId')!r}"

    @staticmethod
    def _create_keys(stack):
        """Creates the stack's KMS keys before anything is rendered: policies name their ARNs,
        which only KMS chooses. Their key policies are set once rendered (_AWS_KMS_Key)."""
        from moto.kms.models import kms_backends

        backend = kms_backends[stack.account][stack.region]
        for logical_id, resource in stack.template.get("Resources", {}).items():
            if resource.get("Type") != "AWS::KMS::Key" or logical_id in stack.physical_given:
                continue
            if not stack.exists(logical_id):
                continue
            props = resource.get("Properties", {})
            key = backend.create_key(policy=None, key_usage=props.get("KeyUsage", "ENCRYPT_DECRYPT"),
                                     key_spec=props.get("KeySpec", "SYMMETRIC_DEFAULT"),
                                     description=f"{stack.name} {logical_id}", tags=None)
            stack.physical_given[logical_id] = {"ref": key.id, "attributes": {"Arn": key.arn, "KeyId": key.id}}

    def _AWS_KMS_Key(self, stack, logical_id, props):
        from moto.kms.models import kms_backends

        kms_backends[stack.account][stack.region].put_key_policy(
            stack.ref(logical_id), _document(props["KeyPolicy"]))
        return None

    def _AWS_S3_Bucket(self, stack, logical_id, props):
        """A bucket the lab made under the template's name gets the template's encryption."""
        from moto.s3.models import s3_backends

        backend = s3_backends[stack.account]["aws"]
        name = stack.ref(logical_id)
        if name not in backend.buckets:
            return f"the lab has no bucket {name!r}"
        for rule in props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", []):
            default = rule.get("ServerSideEncryptionByDefault", {})
            backend.put_bucket_encryption(name, {"Rule": {
                "ApplyServerSideEncryptionByDefault": {
                    "SSEAlgorithm": default.get("SSEAlgorithm", "AES256"),
                    **({"KMSMasterKeyID": default["KMSMasterKeyID"]} if "KMSMasterKeyID" in default else {}),
                },
                "BucketKeyEnabled": "true" if rule.get("BucketKeyEnabled") else "false",
            }})
        return None
