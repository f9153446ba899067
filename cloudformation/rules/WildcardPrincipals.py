"""
irf custom cfn-lint rule E9002: no statement allows a wildcard principal unconditionally.

An Allow statement whose Principal is "*" (or {"AWS": "*"}, or any principal type given as
"*"), or an Allow statement with NotPrincipal, must carry a Condition on one of
aws:PrincipalOrgID, aws:SourceAccount, aws:SourceArn, aws:PrincipalAccount or
aws:SourceOrgID whose value is not itself a wildcard. Deny statements are not concerned.

Policies given as JSON strings (also inside Fn::Sub) are parsed and checked the same way.
"""

import json
import re

from cfnlint.rules import CloudFormationLintRule, RuleMatch

_SUB_VARIABLE = re.compile(r"\$\{[^}]*\}")

LIMITING_KEYS = {
    "aws:principalorgid",
    "aws:sourceaccount",
    "aws:sourcearn",
    "aws:principalaccount",
    "aws:sourceorgid",
}


def _json_policy(text):
    if '"Statement"' not in text:
        return None
    try:
        return json.loads(_SUB_VARIABLE.sub("x", text))
    except ValueError:
        return None


def statements(node, path):
    """Yields (path, statement) for every policy statement below `node`."""
    if isinstance(node, dict):
        if "Effect" in node and ("Action" in node or "NotAction" in node):
            yield path, node
        for key, value in node.items():
            if key == "Fn::Sub":
                text = value[0] if isinstance(value, list) and value else value
                if isinstance(text, str):
                    parsed = _json_policy(text)
                    if parsed is not None:
                        yield from statements(parsed, path + [key])
                continue
            yield from statements(value, path + [key])
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from statements(value, path + [index])
    elif isinstance(node, str):
        parsed = _json_policy(node)
        if parsed is not None:
            yield from statements(parsed, path)


def as_list(value):
    return list(value) if isinstance(value, (list, tuple)) else [value]


def is_wildcard_principal(principal):
    if principal == "*":
        return True
    if isinstance(principal, dict):
        return any(
            "*" in as_list(value)
            for key, value in principal.items()
            if not key.startswith("Fn::") and key != "Ref"
        )
    return False


def has_limiting_condition(condition):
    if not isinstance(condition, dict):
        return False
    for operator, clauses in condition.items():
        if not isinstance(clauses, dict) or operator.startswith("Fn::"):
            continue
        for key, value in clauses.items():
            if not isinstance(key, str) or key.lower() not in LIMITING_KEYS:
                continue
            values = as_list(value)
            if values and not any(v in ("*", "") for v in values if isinstance(v, str)):
                return True
    return False


class WildcardPrincipals(CloudFormationLintRule):
    """Refuses Allow statements open to any principal without an account or org condition."""

    id = "E9002"
    shortdesc = "Wildcard principals need an account, organization or source condition"
    description = (
        "irf: an Allow statement with Principal '*' (or NotPrincipal) must have a Condition "
        "on aws:PrincipalOrgID, aws:SourceAccount, aws:SourceArn, aws:PrincipalAccount or "
        "aws:SourceOrgID"
    )
    source_url = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html"
    tags = ["iam", "irf"]

    def match(self, cfn):
        matches = []
        for name, resource in cfn.get_resources().items():
            properties = resource.get("Properties")
            if not isinstance(properties, dict):
                continue
            for path, statement in statements(properties, ["Resources", name, "Properties"]):
                if statement.get("Effect") != "Allow":
                    continue
                if "NotPrincipal" in statement:
                    reason = "NotPrincipal"
                elif is_wildcard_principal(statement.get("Principal")):
                    reason = "Principal '*'"
                else:
                    continue
                if has_limiting_condition(statement.get("Condition")):
                    continue
                matches.append(
                    RuleMatch(
                        path,
                        f"{name}: Allow statement with {reason} has no Condition on "
                        "aws:PrincipalOrgID, aws:SourceAccount, aws:SourceArn, "
                        "aws:PrincipalAccount or aws:SourceOrgID",
                    )
                )
        return matches
