"""The profile frontend: measured per-block latencies (Scission's CSV layout) -> LayerGraph.

Block table layout (one row per block, one time column per system, seconds)::

    model,block,input_layer,output_layer,output_bytes,<system>,<system>,...

e.g. ``device-raspi4,edge-2500,edge-vm2Core,cloud-6700k(NoGPU),cloud-6700k(GPU)``. The
blocks of one model, sorted by ``block``, become a chain of layers of op ``"other"`` named
``"block<i>"`` with ``flops = 0``, ``times = {system column: seconds}`` (so a
:class:`~d3opt.system.Node` named like a column uses them) and
``out_bytes = output_bytes - 128``: Scission saved each block output as a ``.npy`` file whose
header takes 128 bytes. ``source`` is ``(input_layer, output_layer)`` of the block (the
model's own layer indices). The chain starts with an ``"input"`` layer named ``"input"``
whose size is ``input_bytes``, by default a float32 RGB image at the model's usual
resolution: 299x299 for ``inception_v3``, ``inceptionresnet_v2`` and ``xception``, 331x331
for ``nasnetlarge``, 224x224 otherwise.

Network table layout: ``source,destination,ping(ms),bandwidth(mbps)`` with systems named
without their tier prefix (``raspi4`` for the column ``device-raspi4``). See
:func:`scission_system`.

Examples
--------
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "blocks.csv"
>>> _ = path.write_text("model,block,input_layer,output_layer,output_bytes,device-pi,cloud-gpu\\n"
...                     "net,0,0,3,1152,0.5,0.01\\nnet,1,4,9,168,0.25,0.005\\n")
>>> g = from_profile(path, model="net", input_bytes=600)
>>> g.order, g["block0"].out_bytes, dict(g["block1"].times)
(('input', 'block0', 'block1'), 1024, {'device-pi': 0.25, 'cloud-gpu': 0.005})
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType

from d3opt.errors import ConfigError, GraphError
from d3opt.graph import Layer, LayerGraph
from d3opt.system import Link, Network, Node, Nodes

__all__ = ["from_profile", "scission_system", "NPY_HEADER_BYTES", "INPUT_SIDE",
           "DEFAULT_EDGE_EDGE"]

#: Bytes of the ``.npy`` header included in Scission's ``output_bytes``.
NPY_HEADER_BYTES = 128

#: Input image side (pixels) of models whose usual input is not 224x224.
INPUT_SIDE = MappingProxyType({"inception_v3": 299, "inceptionresnet_v2": 299,
                               "xception": 299, "nasnetlarge": 331})

#: Edge-to-edge link used when the network table has no row between two edge systems:
#: a 1 Gbit/s switched LAN with 0.5 ms latency.
DEFAULT_EDGE_EDGE = Link.mbps(1000, ms=0.5)

_KEY_COLUMNS = ("model", "block", "input_layer", "output_layer", "output_bytes")
_NET_COLUMNS = ("source", "destination", "ping(ms)", "bandwidth(mbps)")


def _read_csv(path, what: str, error: type) -> tuple[list[str], list[dict[str, str]]]:
    if not isinstance(path, (str, os.PathLike)):
        raise error(f"{what} must be a path, got {type(path).__name__}")
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {str(path)!r} does not exist")
    try:
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle, skipinitialspace=True)
            rows = list(reader)
            header = [h.strip() for h in (reader.fieldnames or [])]
    except (UnicodeDecodeError, csv.Error) as err:
        raise error(f"{what} {path.name!r} is not a readable CSV file: {err}") from None
    rows = [{(k or "").strip(): (v or "").strip() if isinstance(v, str) else v
             for k, v in row.items()} for row in rows]
    return header, rows


def _number(text, what: str, *, integer: bool = False) -> float:
    try:
        value = int(text) if integer else float(text)
    except (TypeError, ValueError):
        raise GraphError(f"{what}: {text!r} is not a number") from None
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise GraphError(f"{what} is {value}; measured values must be finite")
    if value < 0:
        raise GraphError(f"{what} is negative ({value})")
    return value


def _systems(header: Sequence[str], path) -> list[str]:
    missing = [c for c in _KEY_COLUMNS if c not in header]
    if missing:
        raise GraphError(f"profile {Path(path).name!r} lacks columns {missing}; "
                         f"expected {list(_KEY_COLUMNS)} + one time column per system")
    systems = [c for c in header if c not in _KEY_COLUMNS]
    if not systems:
        raise GraphError(f"profile {Path(path).name!r} has no time column (one per system)")
    return systems


def _default_input_bytes(model: str) -> int:
    side = INPUT_SIDE.get(model, 224)
    return side * side * 3 * 4


def from_profile(path, *, model: str, input_bytes: int | None = None) -> LayerGraph:
    """A chain of measured blocks of one model from a Scission-style block table.

    Parameters
    ----------
    path : the CSV file (see the module docstring for its layout).
    model : the value of the ``model`` column to import.
    input_bytes : size of the model input; default: float32 HxWx3 at the model's usual
        resolution (:data:`INPUT_SIDE`, else 224).

    Returns
    -------
    LayerGraph
        ``input -> block0 -> block1 -> ...`` with measured ``times`` per system column.

    Raises
    ------
    GraphError
        When the file is missing or unreadable, a key column is missing, ``model`` is unknown (the message lists the models),
        a block number repeats, or a time or size is missing, NaN, infinite or negative
        (the message names the block and column).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "b.csv"
    >>> _ = path.write_text("model,block,input_layer,output_layer,output_bytes,edge-a\\n"
    ...                     "vgg16,0,0,1,528,0.125\\n")
    >>> g = from_profile(path, model="vgg16")
    >>> g["input"].out_bytes, g["block0"].out_bytes, g["block0"].times["edge-a"]
    (602112, 400, 0.125)
    """
    header, rows = _read_csv(path, "profile file", GraphError)
    systems = _systems(header, path)
    mine = [row for row in rows if row.get("model") == model]
    if not mine:
        available = sorted({row.get("model") for row in rows if row.get("model")})
        raise GraphError(f"model {model!r} is not in profile {Path(path).name!r}; "
                         f"available: {available}")
    blocks = {}
    for row in mine:
        index = int(_number(row.get("block"), f"model {model!r}: block number", integer=True))
        if index in blocks:
            raise GraphError(f"model {model!r}: block {index} appears twice")
        blocks[index] = row
    if input_bytes is None:
        input_bytes = _default_input_bytes(model)
    layers = [Layer("input", "input",
                    out_bytes=_number(input_bytes, f"model {model!r}: input_bytes"))]
    for index in sorted(blocks):
        row, where = blocks[index], f"model {model!r} block {index}"
        size = _number(row.get("output_bytes"), f"{where}: output_bytes", integer=True)
        times = {s: _number(row.get(s), f"{where}: time on {s!r}") for s in systems}
        layers.append(Layer(f"block{index}", "other", out_bytes=max(size - NPY_HEADER_BYTES, 0),
                            times=times,
                            source=(row.get("input_layer", ""), row.get("output_layer", ""))))
    edges = [(a.name, b.name) for a, b in zip(layers, layers[1:])]
    return LayerGraph(layers, edges)


def _bare(system: str) -> str:
    """The network-table name of a system column: its tier prefix removed."""
    for prefix in ("device-", "edge-", "cloud-"):
        if system.startswith(prefix):
            return system[len(prefix):]
    return system


def _links(path) -> dict[tuple[str, str], Link]:
    header, rows = _read_csv(path, "network file", ConfigError)
    missing = [c for c in _NET_COLUMNS if c not in header]
    if missing:
        raise ConfigError(f"network file {Path(path).name!r} lacks columns {missing}")
    links = {}
    for i, row in enumerate(rows, start=2):
        where = f"network file {Path(path).name!r} line {i}"
        try:
            link = Link.mbps(float(row["bandwidth(mbps)"]), ms=float(row["ping(ms)"]))
        except (TypeError, ValueError, ConfigError) as err:
            raise ConfigError(f"{where}: {err}") from None
        pair = (row["source"], row["destination"])
        links[pair] = links[pair[::-1]] = link
    return links


def _find(links, a: str, b: str, what: str, path) -> Link:
    try:
        return links[(_bare(a), _bare(b))]
    except KeyError:
        raise ConfigError(f"network file {Path(path).name!r} has no {what} row between "
                          f"{_bare(a)!r} and {_bare(b)!r}") from None


def scission_system(network_csv, *, device: str, edge: "str | Sequence[str]", cloud: str,
                    blocks_csv=None) -> tuple[Nodes, Network]:
    """Nodes named after Scission's system columns and the measured network between them.

    The nodes carry no analytic speed: they are meant for graphs from :func:`from_profile`,
    whose layers hold measured times keyed by the same names. Links are read from the
    ``source,destination,ping(ms),bandwidth(mbps)`` table, where systems are named without
    their tier prefix (``device-raspi4`` -> ``raspi4``, ``edge-2500`` -> ``2500``,
    ``cloud-6700k(GPU)`` -> ``6700k(GPU)``); rows are taken as symmetric. ``device_edge``
    is the device -> first-edge row, ``edge_cloud`` the first-edge -> cloud row,
    ``device_cloud`` the direct device -> cloud row (omitted when the table has none), and
    ``edge_edge`` the row between the first two edge systems, else
    :data:`DEFAULT_EDGE_EDGE`.

    Parameters
    ----------
    network_csv : the network table.
    device, cloud : system column names of the device and the cloud.
    edge : one or more system column names of edge nodes (the first is the coordinator).
    blocks_csv : optional block table; when given, every named system must be one of its
        time columns.

    Returns
    -------
    (Nodes, Network)

    Raises
    ------
    ConfigError
        On a missing file or column, an unknown system, or a missing link row.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "net.csv"
    >>> _ = path.write_text("source,destination,ping(ms),bandwidth(mbps)\\n"
    ...                     "pi,e1,20,20\\npi,gpu,45,20\\ne1,gpu,20,50\\n")
    >>> nodes, net = scission_system(path, device="device-pi", edge="edge-e1", cloud="cloud-gpu")
    >>> nodes.coordinator.name, net.edge_cloud.latency, net.device_cloud.bandwidth
    ('edge-e1', 0.02, 2500000.0)
    """
    edge = [edge] if isinstance(edge, str) else list(edge)
    if not edge:
        raise ConfigError("scission_system needs at least one edge system")
    if blocks_csv is not None:
        header, _ = _read_csv(blocks_csv, "profile file", ConfigError)
        try:
            known = _systems(header, blocks_csv)
        except GraphError as err:
            raise ConfigError(str(err)) from None
        for system in (device, *edge, cloud):
            if system not in known:
                raise ConfigError(f"system {system!r} is not a time column of "
                                  f"{Path(blocks_csv).name!r}; columns: {known}")
    links = _links(network_csv)
    first = edge[0]
    edge_edge = DEFAULT_EDGE_EDGE
    if len(edge) > 1 and (_bare(first), _bare(edge[1])) in links:
        edge_edge = links[(_bare(first), _bare(edge[1]))]
    network = Network(
        device_edge=_find(links, device, first, "device-edge", network_csv),
        edge_edge=edge_edge,
        edge_cloud=_find(links, first, cloud, "edge-cloud", network_csv),
        device_cloud=links.get((_bare(device), _bare(cloud))),
    )
    nodes = Nodes(Node(device), [Node(name) for name in edge], Node(cloud))
    return nodes, network
