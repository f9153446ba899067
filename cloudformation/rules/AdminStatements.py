"""
irf custom cfn-lint rule E9001: no policy statement grants everything.

A statement with Effect Allow, Action "*" and Resource "*" is administrator access. It is
refused wherever a policy document appears in a template: inline and managed IAM policies,
role trust policies, and resource policies (bucket, key, queue, topic, endpoint, ...). A
statement without Resource (a trust or key policy) applies to everything it is attached to
and counts as Resource "*"; NotResource counts as "*" too.

Policies given as JSON strings (also inside Fn::Sub) are parsed and checked the same way.
"""

import json
import re

from cfnlint.rules import CloudFormationLintRule, RuleMatch

_SUB_VARIABLE = re.compile(r"\$\{[^}]*\}")


def _json_policy(text):
    """A policy document written as a JSON string, or None."""
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


class AdminStatements(CloudFormationLintRule):
    """Refuses Allow statements with Action "*" and Resource "*"."""

    id = "E9001"
    shortdesc = "No policy statement allows Action '*' on Resource '*'"
    description = (
        "irf: an Allow statement with Action '*' (or '*:*') and Resource '*' (or no "
        "Resource) grants administrator access; scope the actions and the resources"
    )
    source_url = "https://docs.aws.amazon.com/IAM/latest/UserGuide/best-practices.html#grant-least-privilege"
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
                actions = as_list(statement.get("Action", []))
                if not any(a in ("*", "*:*") for a in actions if isinstance(a, str)):
                    continue
                if "Resource" in statement:
                    resources = as_list(statement["Resource"])
                    if not any(r == "*" for r in resources if isinstance(r, str)):
                        continue
                matches.append(
                    RuleMatch(
                        path,
                        f"{name}: statement allows Action '*' on Resource '*' (administrator access)",
                    )
                )
        return matches
