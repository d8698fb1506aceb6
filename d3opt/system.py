"""The system: compute nodes on three tiers and the links between them.

Units are SI throughout: FLOP/s, bytes, bytes/s, seconds. Friendly constructors take
Mbit/s and milliseconds.

Examples
--------
>>> from d3opt.system import Node, Nodes, Link, Network, Tier
>>> nodes = Nodes(device=Node("phone", flops=20e9), edge=[Node("e0", flops=200e9)],
...               cloud=Node("gpu", flops=10e12))
>>> net = Network(device_edge=Link.mbps(20, ms=20), edge_edge=Link.mbps(1000, ms=1),
...               edge_cloud=Link.mbps(50, ms=30))
>>> nodes.coordinator.name, net.device_edge.bandwidth, Tier.EDGE < Tier.CLOUD
('e0', 2500000.0, True)
"""

from __future__ import annotations

import enum
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

import numpy as np

from d3opt.errors import ConfigError


class Tier(enum.IntEnum):
    """Where a layer runs; along every edge of the graph the tier never decreases."""

    DEVICE = 0
    EDGE = 1
    CLOUD = 2

    @classmethod
    def parse(cls, value: "Tier | str | int") -> "Tier":
        """Accept a Tier, its name in any case, or its number.

        >>> Tier.parse("edge"), Tier.parse(2)
        (<Tier.EDGE: 1>, <Tier.CLOUD: 2>)
        """
        if isinstance(value, Tier):
            return value
        if isinstance(value, str):
            try:
                return cls[value.upper()]
            except KeyError:
                raise ConfigError(f"unknown tier {value!r}; use device, edge or cloud") from None
        try:
            return cls(int(value))
        except (ValueError, TypeError):
            raise ConfigError(f"unknown tier {value!r}; use device, edge or cloud") from None


def _positive(value, what: str, *, allow_zero: bool = False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number, got {value!r}") from None
    if math.isnan(number) or math.isinf(number) or number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{what} must be finite and {bound}, got {value!r}")
    return number


@dataclass(frozen=True)
class Node:
    """A compute node with a roofline speed model and/or measured per-layer times.

    The time of a layer is its measured time when the layer's ``times`` (or this node's
    ``times``) name it; otherwise ``max(flops / self.flops, traffic / mem_bandwidth) +
    overhead`` where traffic is the layer's parameter, input and output bytes.

    Parameters
    ----------
    name : unique node name; measured profiles are matched by it.
    flops : peak FLOP/s (None only if every layer has a measured time on this node).
    mem_bandwidth : memory bandwidth in bytes/s (None: compute-bound roofline).
    overhead : fixed seconds added per layer run.
    memory : bytes of weights the node can hold (None: unlimited).
    times : measured seconds per layer name (wins over a layer's own ``times``).

    >>> Node("pi", flops=13.5e9, memory=2**30).memory
    1073741824
    """

    name: str
    flops: float | None = None
    mem_bandwidth: float | None = None
    overhead: float = 0.0
    memory: int | None = None
    times: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"node names must be non-empty strings, got {self.name!r}")
        where = f"node {self.name!r}"
        if self.flops is not None:
            object.__setattr__(self, "flops", _positive(self.flops, f"{where}: flops"))
        if self.mem_bandwidth is not None:
            object.__setattr__(
                self, "mem_bandwidth", _positive(self.mem_bandwidth, f"{where}: mem_bandwidth")
            )
        object.__setattr__(
            self, "overhead", _positive(self.overhead, f"{where}: overhead", allow_zero=True)
        )
        if self.memory is not None:
            object.__setattr__(self, "memory", int(_positive(self.memory, f"{where}: memory")))
        times = {
            str(k): _positive(v, f"{where}: time of layer {k!r}", allow_zero=True)
            for k, v in dict(self.times).items()
        }
        object.__setattr__(self, "times", MappingProxyType(times))

    @classmethod
    def gflops(cls, name: str, gflops: float, **kwargs) -> "Node":
        """A node with ``gflops`` GFLOP/s peak.

        >>> Node.gflops("e", 200).flops
        200000000000.0
        """
        return cls(name, flops=_positive(gflops, f"node {name!r}: gflops") * 1e9, **kwargs)


@dataclass(frozen=True)
class Nodes:
    """One device, ``K >= 1`` edge nodes (the first is the coordinator) and one cloud.

    >>> Nodes(Node("d", flops=1e9), [Node("e0", flops=1e10)], Node("c", flops=1e12)).K
    1
    """

    device: Node
    edge: Sequence[Node]
    cloud: Node

    def __post_init__(self):
        edge = tuple(self.edge)
        if not edge:
            raise ConfigError("at least one edge node is required (K >= 1)")
        object.__setattr__(self, "edge", edge)
        for node in (self.device, *edge, self.cloud):
            if not isinstance(node, Node):
                raise ConfigError(f"expected Node records, got {type(node).__name__}")
        names = [n.name for n in self.all]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError(f"node names must be unique; repeated: {dupes}")

    @property
    def K(self) -> int:  # noqa: N802 - the paper's symbol
        """Number of edge nodes."""
        return len(self.edge)

    @property
    def coordinator(self) -> Node:
        """The edge node that talks to the device and the cloud and runs untiled edge layers."""
        return self.edge[0]

    @property
    def all(self) -> tuple[Node, ...]:
        """Every node: device, edge nodes, cloud."""
        return (self.device, *self.edge, self.cloud)

    def tier_node(self, tier: "Tier") -> Node:
        """The node that runs untiled layers of ``tier``."""
        return (self.device, self.coordinator, self.cloud)[Tier.parse(tier)]

    def __getitem__(self, name: str) -> Node:
        for node in self.all:
            if node.name == name:
                return node
        raise ConfigError(f"no node named {name!r}; nodes are {[n.name for n in self.all]}")

    def replace_node(self, name: str, **changes) -> "Nodes":
        """A copy with node ``name`` changed (e.g. ``flops=...``); self is unchanged."""
        self[name]
        swap = lambda n: replace(n, **changes) if n.name == name else n  # noqa: E731
        return Nodes(swap(self.device), [swap(n) for n in self.edge], swap(self.cloud))


@dataclass(frozen=True)
class Link:
    """A network link: ``latency + bytes / bandwidth`` seconds per message.

    >>> Link.mbps(8, ms=10).transfer_time(1_000_000)
    1.01
    """

    bandwidth: float
    latency: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "bandwidth", _positive(self.bandwidth, "link bandwidth"))
        object.__setattr__(self, "latency", _positive(self.latency, "link latency", allow_zero=True))

    @classmethod
    def mbps(cls, mbit_per_s: float, *, ms: float = 0.0) -> "Link":
        """A link of ``mbit_per_s`` Mbit/s (10^6 bits) and ``ms`` milliseconds latency."""
        return cls(bandwidth=_positive(mbit_per_s, "link Mbit/s") * 1e6 / 8, latency=ms / 1e3)

    def transfer_time(self, nbytes: float) -> float:
        """Seconds to send one message of ``nbytes`` (zero for an empty message)."""
        return 0.0 if nbytes <= 0 else self.latency + nbytes / self.bandwidth

    def transfer_times(self, nbytes) -> np.ndarray:
        """:meth:`transfer_time` of every entry of an array of message sizes.

        >>> Link(100.0, latency=1.0).transfer_times([0, 50]).tolist()
        [0.0, 1.5]
        """
        nbytes = np.asarray(nbytes, dtype=float)
        return np.where(nbytes > 0, self.latency + nbytes / self.bandwidth, 0.0)


LINKS = ("device_edge", "edge_edge", "edge_cloud", "device_cloud")
LAN_MODES = ("switched", "shared")


@dataclass(frozen=True)
class Network:
    """Links between the tiers.

    ``device_cloud`` is optional; without it device<->cloud data is relayed through the
    coordinator edge node (it crosses both links). ``lan`` says whether transfers between edge
    nodes run in parallel (``"switched"``) or one after another (``"shared"``).

    >>> net = Network(Link(1e6), Link(1e8), Link(1e7))
    >>> net.device_cloud is None, net.lan
    (True, 'switched')
    """

    device_edge: Link
    edge_edge: Link
    edge_cloud: Link
    device_cloud: Link | None = None
    lan: str = "switched"

    def __post_init__(self):
        for name in LINKS:
            link = getattr(self, name)
            if link is None and name == "device_cloud":
                continue
            if not isinstance(link, Link):
                raise ConfigError(f"link {name!r} must be a Link, got {link!r}")
        if self.lan not in LAN_MODES:
            raise ConfigError(f"lan must be one of {LAN_MODES}, got {self.lan!r}")

    def with_link(self, name: str, link: Link | None) -> "Network":
        """A copy with link ``name`` replaced; self is unchanged."""
        if name not in LINKS:
            raise ConfigError(f"unknown link {name!r}; links are {list(LINKS)}")
        return replace(self, **{name: link})


@dataclass(frozen=True)
class Scenario:
    """Nodes and network loaded together from a TOML file."""

    name: str
    nodes: Nodes
    network: Network
    description: str = ""


def _node_from_toml(table: Mapping, where: str) -> Node:
    table = dict(table)
    allowed = {"name", "flops", "gflops", "tflops", "mem_bandwidth", "mem_gbps", "overhead",
               "overhead_ms", "memory", "memory_mb", "times", "note"}
    unknown = set(table) - allowed
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    if "name" not in table:
        raise ConfigError(f"{where}: missing 'name'")
    flops = table.get("flops")
    if "gflops" in table:
        flops = _positive(table["gflops"], f"{where}: gflops", allow_zero=True) * 1e9
    if "tflops" in table:
        flops = _positive(table["tflops"], f"{where}: tflops", allow_zero=True) * 1e12
    bandwidth = table.get("mem_bandwidth")
    if "mem_gbps" in table:
        bandwidth = _positive(table["mem_gbps"], f"{where}: mem_gbps", allow_zero=True) * 1e9
    overhead = table.get("overhead", 0.0)
    if "overhead_ms" in table:
        overhead = _positive(table["overhead_ms"], f"{where}: overhead_ms", allow_zero=True) / 1e3
    memory = table.get("memory")
    if "memory_mb" in table:
        memory = int(_positive(table["memory_mb"], f"{where}: memory_mb", allow_zero=True) * 2**20)
    return Node(table["name"], flops=flops, mem_bandwidth=bandwidth, overhead=overhead,
                memory=memory, times=table.get("times", {}))


def _link_from_toml(table: Mapping, where: str) -> Link:
    table = dict(table)
    unknown = set(table) - {"bandwidth", "mbps", "latency", "ms", "note"}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    if "mbps" in table:
        bandwidth = _positive(table["mbps"], f"{where}: mbps") * 1e6 / 8
    elif "bandwidth" in table:
        bandwidth = table["bandwidth"]
    else:
        raise ConfigError(f"{where}: give 'mbps' or 'bandwidth' (bytes/s)")
    latency = (_positive(table["ms"], f"{where}: ms", allow_zero=True) / 1e3 if "ms" in table
               else table.get("latency", 0.0))
    try:
        return Link(bandwidth=bandwidth, latency=latency)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


def scenario_from_dict(data: Mapping, *, name: str = "scenario") -> Scenario:
    """Build a :class:`Scenario` from parsed TOML (see :func:`load_scenario`)."""
    try:
        nodes_t, net_t = data["nodes"], data["network"]
        device = _node_from_toml(nodes_t["device"], "nodes.device")
        cloud = _node_from_toml(nodes_t["cloud"], "nodes.cloud")
        edge_t = nodes_t["edge"]
    except KeyError as err:
        raise ConfigError(f"scenario {name!r}: missing table or key {err}") from None
    edge_t = [edge_t] if isinstance(edge_t, Mapping) else list(edge_t)
    edge = []
    for i, table in enumerate(edge_t):
        count = dict(table).get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ConfigError(f"nodes.edge[{i}]: count must be a positive integer, got {count!r}")
        base = {k: v for k, v in dict(table).items() if k != "count"}
        for j in range(count):
            entry = dict(base)
            if count > 1:
                entry["name"] = f"{base.get('name', 'edge')}{j}"
            edge.append(_node_from_toml(entry, f"nodes.edge[{i}]"))
    links = {}
    for link_name in LINKS:
        if link_name in net_t:
            links[link_name] = _link_from_toml(net_t[link_name], f"network.{link_name}")
        elif link_name != "device_cloud":
            raise ConfigError(f"scenario {name!r}: missing link network.{link_name}")
    network = Network(**links, lan=net_t.get("lan", "switched"))
    return Scenario(name=data.get("name", name), nodes=Nodes(device, edge, cloud),
                    network=network, description=data.get("description", ""))


def load_scenario(path: "str | Path") -> Scenario:
    """Load nodes and network from a TOML file.

    Layout: ``[nodes.device]``, ``[[nodes.edge]]`` (repeatable; ``count = 4`` makes four
    copies named ``name0..name3``), ``[nodes.cloud]`` with ``name`` and ``gflops`` /
    ``tflops`` / ``flops``, optional ``mem_gbps``, ``overhead_ms``, ``memory_mb``; and
    ``[network.device_edge]``, ``[network.edge_edge]``, ``[network.edge_cloud]``, optional
    ``[network.device_cloud]``, each with ``mbps`` (or ``bandwidth`` in bytes/s) and ``ms``;
    ``network.lan = "switched" | "shared"``.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"scenario file {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"scenario file {path.name!r} is not valid TOML: {err}") from None
    return scenario_from_dict(data, name=path.stem)


def builtin_scenarios() -> dict[str, Path]:
    """Names and paths of the scenarios shipped with d3opt."""
    folder = Path(__file__).parent / "scenarios"
    return {p.stem: p for p in sorted(folder.glob("*.toml"))}


def scenario(name_or_path: "str | Path") -> Scenario:
    """A shipped scenario by name (e.g. ``"wifi"``), or a TOML file by path."""
    shipped = builtin_scenarios()
    if str(name_or_path) in shipped:
        return load_scenario(shipped[str(name_or_path)])
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        return load_scenario(path)
    raise ConfigError(f"unknown scenario {name_or_path!r}; shipped: {sorted(shipped)}")


__all__ = ["Tier", "Node", "Nodes", "Link", "Network", "Scenario", "load_scenario",
           "scenario", "builtin_scenarios", "scenario_from_dict", "LINKS"]
