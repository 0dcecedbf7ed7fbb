"""Hosts of their own for the processes of a test: Linux network namespaces joined by veth pairs to a bridge.

Everything lives in namespaces the test creates, so the machine's own network is never touched::

    hub namespace:   br0 <- h1, h2, ... (the hub ends of the veth pairs)
    host namespace:  lo, eth0 (the other end of its pair) with SUBNET.N/24

A host's veth pair is created from the hub straight into the host's namespace (``ip -n HUB link add hN type veth
peer name eth0 netns HOST``), so no interface ever appears in the root namespace. ``cut`` takes a host's hub end
down, as a pulled cable would: the host's processes keep running and see no error, only silence. ``close`` deletes
every namespace, which deletes the veth pairs and the bridge with them.

``Topology.create`` skips the test (``pytest.skip``, with the reason) where namespaces cannot be made: not root, no
``ip`` (iproute2), or a kernel or container that refuses a namespace, a veth pair or a bridge.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass

import pytest

SUBNET = "10.213.0"  # a private /24, and only ever inside the test's own namespaces
IP_TIMEOUT_S = 10


@dataclass(frozen=True)
class Host:
    name: str  # the test's name for it ("master", "w1", ...)
    netns: str  # its namespace
    address: str  # its eth0 address
    hub_link: str  # its veth end in the hub namespace

    def prefix(self) -> list[str]:
        """The words that run a command on this host."""
        return ["ip", "netns", "exec", self.netns]


class SetupRefused(Exception):
    """The system would not create a namespace, a veth pair or a bridge."""


def _ip(*args: str) -> None:
    try:
        done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SetupRefused(f"ip {' '.join(args)}: {e}") from e
    if done.returncode != 0:
        raise SetupRefused(f"ip {' '.join(args)}: {done.stderr.strip() or f'exit code {done.returncode}'}")


class Topology:
    """A hub namespace with a bridge, and hosts attached to it; ``prefix`` names its namespaces (unique per run)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.hub = f"{prefix}-hub"
        self.hosts: dict[str, Host] = {}
        self._namespaces: list[str] = []

    @classmethod
    def create(cls, names: list[str]) -> Topology:
        """The hub and one host per name, numbered from .1 in the order given; skips the test where impossible."""
        if not sys.platform.startswith("linux"):
            pytest.skip("network namespaces are Linux only")
        if os.geteuid() != 0:
            pytest.skip("creating network namespaces needs root")
        if shutil.which("ip") is None:
            pytest.skip("no `ip` command (iproute2) to create network namespaces with")
        topo = cls(f"lrs{uuid.uuid4().hex[:6]}")
        try:
            topo._add_namespace(topo.hub)
            _ip("-n", topo.hub, "link", "set", "lo", "up")
            _ip("-n", topo.hub, "link", "add", "br0", "type", "bridge")
            _ip("-n", topo.hub, "link", "set", "br0", "up")
            for i, name in enumerate(names, start=1):
                topo._add_host(name, i)
        except SetupRefused as e:
            topo.close()
            pytest.skip(f"cannot create network namespaces here: {e}")
        except BaseException:
            topo.close()
            raise
        return topo

    def _add_namespace(self, netns: str) -> None:
        _ip("netns", "add", netns)
        self._namespaces.append(netns)

    def _add_host(self, name: str, index: int) -> None:
        netns = f"{self.prefix}-{name}"
        link = f"h{index}"
        address = f"{SUBNET}.{index}"
        self._add_namespace(netns)
        _ip("-n", self.hub, "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", netns)
        _ip("-n", self.hub, "link", "set", link, "master", "br0")
        _ip("-n", self.hub, "link", "set", link, "up")
        _ip("-n", netns, "link", "set", "lo", "up")
        _ip("-n", netns, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", netns, "link", "set", "eth0", "up")
        self.hosts[name] = Host(name, netns, address, link)

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def cut(self, name: str) -> None:
        """Takes the host's link down at the hub: its packets go nowhere, its processes keep running."""
        _ip("-n", self.hub, "link", "set", self.hosts[name].hub_link, "down")

    def close(self) -> None:
        """Deletes every namespace (their veth pairs and the bridge go with them); never raises."""
        for netns in reversed(self._namespaces):
            try:
                subprocess.run(["ip", "netns", "delete", netns], capture_output=True, timeout=IP_TIMEOUT_S, check=False)
            except (OSError, subprocess.TimeoutExpired):
                pass  # the others must still go
        self._namespaces.clear()
