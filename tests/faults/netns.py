"""A network namespace joined to the host by a veth pair: a link the test can cut silently.

The app runs inside the namespace and reaches the database (or the pooler) at the host end of
the pair. `ip link set <host end> down` makes every packet on the link vanish without a reset,
as a firewall or a cloud load balancer does: a client's send still succeeds and its read waits
until a timeout of its own gives up (TCP_USER_TIMEOUT, tcp(7)). Needs root and iproute2; no
iptables.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def _ip(*arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["ip", *arguments], capture_output=True, text=True, timeout=30, check=False
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(arguments)} failed: {result.stderr.strip()}")
    return result


@dataclass(frozen=True)
class NetworkNamespace:
    name: str
    host_interface: str
    host_address: str
    inner_address: str

    @property
    def exec_prefix(self) -> list[str]:
        """Prefix a command with this to run it inside the namespace."""
        return ["ip", "netns", "exec", self.name]

    def cut(self) -> None:
        """Take the link down: packets in both directions vanish, nobody is told."""
        _ip("link", "set", self.host_interface, "down")

    def restore(self) -> None:
        _ip("link", "set", self.host_interface, "up")


@contextmanager
def network_namespace(slot: int = 0) -> Iterator[NetworkNamespace]:
    """Create a namespace with a /30 link to the host; remove both whatever happens."""
    if os.geteuid() != 0:
        raise RuntimeError("a network namespace needs root (ip netns add)")
    # Names and the private subnet derive from the pid, so parallel test processes never clash.
    tag = f"{os.getpid() % 10_000_000}{slot}"
    index = (os.getpid() * 4 + slot) % 16_384
    subnet = f"10.213.{index // 64}.{(index % 64) * 4}"
    prefix = subnet.rsplit(".", 1)[0]
    base = int(subnet.rsplit(".", 1)[1])
    namespace = NetworkNamespace(
        name=f"fault-{tag}",
        host_interface=f"fh{tag}"[:15],
        host_address=f"{prefix}.{base + 1}",
        inner_address=f"{prefix}.{base + 2}",
    )
    inner_interface = f"fn{tag}"[:15]
    try:
        _ip("netns", "add", namespace.name)
        _ip(
            "link", "add", namespace.host_interface, "type", "veth", "peer", "name", inner_interface
        )
        _ip("link", "set", inner_interface, "netns", namespace.name)
        _ip("addr", "add", f"{namespace.host_address}/30", "dev", namespace.host_interface)
        _ip("link", "set", namespace.host_interface, "up")
        inside = ["-n", namespace.name]
        _ip(*inside, "addr", "add", f"{namespace.inner_address}/30", "dev", inner_interface)
        _ip(*inside, "link", "set", inner_interface, "up")
        _ip(*inside, "link", "set", "lo", "up")
        # Fixed neighbour entries: with the link down, ARP would fail after a few seconds and
        # connects would get "No route to host" at once; a silent drop answers nothing at all.
        host_mac = Path(f"/sys/class/net/{namespace.host_interface}/address").read_text().strip()
        _ip(*inside, "neigh", "replace", namespace.host_address, "lladdr", host_mac,
            "dev", inner_interface, "nud", "permanent")  # fmt: skip
        yield namespace
    finally:
        # Deleting the namespace destroys its end of the pair, and with it the host end.
        _ip("netns", "delete", namespace.name, check=False)
        _ip("link", "delete", namespace.host_interface, check=False)
