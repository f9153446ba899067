"""
irf custom cfn-lint rule E9003: every S3 bucket is encrypted, private and TLS-only.

Each AWS::S3::Bucket must have
  * BucketEncryption with at least one ServerSideEncryptionConfiguration rule;
  * PublicAccessBlockConfiguration with BlockPublicAcls, BlockPublicPolicy, IgnorePublicAcls
    and RestrictPublicBuckets all true (literal true, not a parameter);
  * an AWS::S3::BucketPolicy in the same template whose Bucket is {"Ref": <the bucket>} and
    which has a Deny statement for Principal "*" on "s3:*" with the condition
    Bool aws:SecureTransport false.

A bucket whose policy is deployed by another template (the evidence bucket, whose policy
is template 6's) says so in its Metadata:

    Metadata:
      irf:
        bucket-policy-in: 6-forensic-evidence-bucket-policies.yaml

The named template (relative to this one) must exist and hold a bucket policy with that
TLS-only Deny statement.
"""

import os

from cfnlint.rules import CloudFormationLintRule, RuleMatch

PUBLIC_ACCESS_FLAGS = (
    "BlockPublicAcls",
    "BlockPublicPolicy",
    "IgnorePublicAcls",
    "RestrictPublicBuckets",
)


def as_list(value):
    return list(value) if isinstance(value, (list, tuple)) else [value]


def is_true(value):
    return value is True or (isinstance(value, str) and value.lower() == "true")


def is_false(value):
    return value is False or (isinstance(value, str) and value.lower() == "false")


def denies_insecure_transport(statement):
    if not isinstance(statement, dict) or statement.get("Effect") != "Deny":
        return False
    principal = statement.get("Principal")
    if not (principal == "*" or (isinstance(principal, dict) and "*" in as_list(principal.get("AWS")))):
        return False
    if not any(a in ("s3:*", "*") for a in as_list(statement.get("Action"))):
        return False
    condition = statement.get("Condition")
    if not isinstance(condition, dict):
        return False
    for operator in ("Bool", "BoolIfExists"):
        clauses = condition.get(operator)
        if not isinstance(clauses, dict):
            continue
        for key, value in clauses.items():
            if isinstance(key, str) and key.lower() == "aws:securetransport":
                values = as_list(value)
                if values and all(is_false(v) for v in values):
                    return True
    return False


def tls_policies(template):
    """Yields (logical id, bucket property) of bucket policies with the TLS-only Deny."""
    resources = template.get("Resources", {}) if isinstance(template, dict) else {}
    for name, resource in resources.items():
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::S3::BucketPolicy":
            continue
        properties = resource.get("Properties") or {}
        document = properties.get("PolicyDocument") or {}
        if not isinstance(document, dict):
            continue
        if any(denies_insecure_transport(s) for s in as_list(document.get("Statement"))):
            yield name, properties.get("Bucket")


class S3BucketBaseline(CloudFormationLintRule):
    """Encryption, public access block and a TLS-only bucket policy for every bucket."""

    id = "E9003"
    shortdesc = "S3 buckets are encrypted, block public access and deny plain HTTP"
    description = (
        "irf: every AWS::S3::Bucket has BucketEncryption, a PublicAccessBlockConfiguration "
        "with all four flags true, and a bucket policy denying aws:SecureTransport false "
        "(in this template, or in the template named by Metadata irf.bucket-policy-in)"
    )
    source_url = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/security-best-practices.html"
    tags = ["s3", "irf"]

    def match(self, cfn):
        matches = []
        protected = {
            bucket.get("Ref")
            for _, bucket in tls_policies(cfn.template)
            if isinstance(bucket, dict)
        }
        for name, resource in cfn.get_resources().items():
            if resource.get("Type") != "AWS::S3::Bucket":
                continue
            path = ["Resources", name]
            properties = resource.get("Properties")
            if not isinstance(properties, dict):
                properties = {}

            encryption = properties.get("BucketEncryption")
            rules = encryption.get("ServerSideEncryptionConfiguration") if isinstance(encryption, dict) else None
            if not rules:
                matches.append(RuleMatch(path + ["Properties"], f"{name}: bucket has no BucketEncryption"))

            block = properties.get("PublicAccessBlockConfiguration")
            if not isinstance(block, dict):
                matches.append(
                    RuleMatch(path + ["Properties"], f"{name}: bucket has no PublicAccessBlockConfiguration")
                )
            else:
                for flag in PUBLIC_ACCESS_FLAGS:
                    if not is_true(block.get(flag)):
                        matches.append(
                            RuleMatch(
                                path + ["Properties", "PublicAccessBlockConfiguration"],
                                f"{name}: PublicAccessBlockConfiguration.{flag} must be true",
                            )
                        )

            if name in protected:
                continue
            elsewhere = self._policy_elsewhere(cfn, resource)
            if elsewhere is None:
                matches.append(
                    RuleMatch(
                        path,
                        f"{name}: no AWS::S3::BucketPolicy with Bucket !Ref {name} denies "
                        "aws:SecureTransport false (or name the template holding it in "
                        "Metadata irf.bucket-policy-in)",
                    )
                )
            elif elsewhere:
                matches.append(RuleMatch(path + ["Metadata", "irf", "bucket-policy-in"], f"{name}: {elsewhere}"))
        return matches

    @staticmethod
    def _policy_elsewhere(cfn, resource):
        """None when no other template is named; "" when the named one is fine; else why not."""
        metadata = resource.get("Metadata")
        irf = metadata.get("irf") if isinstance(metadata, dict) else None
        other = irf.get("bucket-policy-in") if isinstance(irf, dict) else None
        if not isinstance(other, str) or not other:
            return None
        # Imported here so that a cfn-lint without this module still loads the rule.
        from cfnlint.decode import decode

        base = os.path.dirname(os.path.abspath(cfn.filename)) if cfn.filename else os.getcwd()
        target = os.path.join(base, other)
        if not os.path.isfile(target):
            return f"bucket-policy-in names {other}, which does not exist next to this template"
        template, errors = decode(target)
        if template is None or errors:
            return f"bucket-policy-in names {other}, which cannot be parsed"
        if not any(True for _ in tls_policies(template)):
            return f"{other} has no AWS::S3::BucketPolicy denying aws:SecureTransport false"
        return ""
