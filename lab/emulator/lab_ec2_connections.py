"""EC2 security group connection tracking, as AWS documents it, for the lab's instances.

A flow through an interface is *tracked* unless the interface's groups allow all traffic in
both directions (a rule for every protocol from 0.0.0.0/0 inbound and one to 0.0.0.0/0
outbound, or ::/0 for IPv6). A tracked connection outlives any change of the groups that let it
in: "existing tracked connections are not interrupted" when a rule or group that allowed them
goes. An untracked flow is judged packet by packet, so groups that no longer allow it stop it at
once. Hence containment that only swaps an interface's groups leaves an intruder's open reverse
shell running, and containment that first passes the interface through all-open groups (which
makes its flows untracked) cuts it when the isolation group follows.

Controls (the lab's, no signature):
  POST /irf-lab/ec2/connections {"account", "region", "instance_id", "direction": "inbound" or
    "outbound", "protocol": "tcp" or "udp", "port", "peer": an IPv4 address} opens a connection on
    the instance's primary interface when its groups allow it now (409 naming why otherwise);
  GET /irf-lab/ec2/connections?instance_id=... lists the instance's connections, each "open" or
    "cut", tracked or not.
Every ModifyNetworkInterfaceAttribute and ModifyInstanceAttribute that changes groups is passed to
`groups_changed`, after EC2 (moto) applied it.
"""

import ipaddress
import threading
import uuid

from moto.ec2.models import ec2_backends

_ALL_V4 = ipaddress.ip_network("0.0.0.0/0")
_ALL_V6 = ipaddress.ip_network("::/0")


class Refused(Exception):
    """A connection the interface's groups do not allow, with why."""


def _rules(groups, egress):
    for group in groups:
        yield from (group.egress_rules if egress else group.ingress_rules)


def _cidr(rule):
    text = rule.ip_range.get("CidrIp") or rule.ip_range.get("CidrIpv6")
    return ipaddress.ip_network(text, strict=False) if text else None


def _allows_everything(groups, egress):
    return any(rule.ip_protocol == "-1" and _cidr(rule) in (_ALL_V4, _ALL_V6)
               for rule in _rules(groups, egress))


def untracked(groups):
    """Whether flows through `groups` are untracked: all traffic allowed both ways."""
    return _allows_everything(groups, egress=False) and _allows_everything(groups, egress=True)


def allows(groups, direction, protocol, port, peer):
    """Whether `groups` let a new flow of `protocol` on `port` with `peer` in `direction`."""
    address = ipaddress.ip_address(peer)
    for rule in _rules(groups, egress=direction == "outbound"):
        network = _cidr(rule)
        if network is None or address.version != network.version or address not in network:
            continue
        if rule.ip_protocol == "-1":
            return True
        if rule.ip_protocol == protocol and rule.from_port <= port <= rule.to_port:
            return True
    return False


def _primary_interface(account, region, instance_id):
    backend = ec2_backends[account][region]
    instance = backend.get_instance_by_id(instance_id)
    if instance is None:
        raise Refused(f"no instance {instance_id} in {account}/{region}")
    interfaces = sorted(instance.nics.items())
    if not interfaces:
        raise Refused(f"{instance_id} has no network interface")
    return interfaces[0][1]


def _groups_of(interface):
    # The interface's own groups (what ModifyNetworkInterfaceAttribute sets), as EC2 applies them.
    return list(interface._group_set)


class Connections:
    """Every connection the lab opened, by interface, with EC2's tracking rules applied."""

    def __init__(self):
        self.lock = threading.Lock()
        self.by_interface = {}

    def open(self, request):
        for field in ("account", "region", "instance_id", "direction", "protocol", "port", "peer"):
            if field not in request:
                raise Refused(f"a connection needs {field!r}")
        direction, protocol = request["direction"], request["protocol"]
        if direction not in ("inbound", "outbound") or protocol not in ("tcp", "udp"):
            raise Refused(f"direction {direction!r} / protocol {protocol!r}: inbound or outbound, tcp or udp")
        port = int(request["port"])
        interface = _primary_interface(request["account"], request["region"], request["instance_id"])
        groups = _groups_of(interface)
        if not allows(groups, direction, protocol, port, request["peer"]):
            raise Refused(f"the groups of {interface.id} ({', '.join(g.id for g in groups)}) do not allow "
                          f"{direction} {protocol}/{port} with {request['peer']}")
        connection = {"id": str(uuid.uuid4()), "instance_id": request["instance_id"],
                      "interface_id": interface.id, "direction": direction, "protocol": protocol,
                      "port": port, "peer": request["peer"], "state": "open",
                      "tracked": not untracked(groups)}
        with self.lock:
            self.by_interface.setdefault(interface.id, []).append(connection)
        return dict(connection)

    def list(self, instance_id):
        with self.lock:
            return [dict(c) for found in self.by_interface.values() for c in found
                    if c["instance_id"] == instance_id]

    def groups_changed(self, account, region, interface_ids):
        """Applies EC2's rules to the open connections of interfaces whose groups just changed."""
        backend = ec2_backends[account][region]
        with self.lock:
            for interface_id in interface_ids:
                connections = self.by_interface.get(interface_id, [])
                if not connections:
                    continue
                groups = _groups_of(backend.get_network_interface(interface_id))
                everything = untracked(groups)
                for connection in connections:
                    if connection["state"] != "open":
                        continue
                    if everything:
                        connection["tracked"] = False
                    elif connection["tracked"]:
                        continue  # a tracked connection outlives the groups that let it in
                    elif allows(groups, connection["direction"], connection["protocol"],
                                connection["port"], connection["peer"]):
                        connection["tracked"] = True
                    else:
                        connection["state"] = "cut"

    def interfaces_of_call(self, account, region, params):
        """The interfaces whose groups an EC2 form changes, or [] for any other call."""
        action = params.get("Action", [""])[0]
        if action == "ModifyNetworkInterfaceAttribute" and any(k.startswith("SecurityGroupId.") for k in params):
            return params.get("NetworkInterfaceId", [])
        if action == "ModifyInstanceAttribute" and any(k.startswith("GroupId.") for k in params):
            instance_id = params.get("InstanceId", [""])[0]
            try:
                return [_primary_interface(account, region, instance_id).id]
            except Refused:
                return []
        return []
