"""Which tensors cross which link, as the latency model counts them (DESIGN section 1).

A tensor produced on one tier is sent once to each later tier that reads it; all tensors on
one link in one direction for one request form one message. Without a direct device-cloud
link, device->cloud tensors go device->edge then edge->cloud (relayed by the coordinator),
and cloud results come back cloud->edge then edge->device. Results computed off the device
are returned to it.

>>> from d3opt.system import Tier
>>> link_name(Tier.DEVICE, Tier.EDGE)
'device->edge'
"""

from __future__ import annotations

from dataclasses import dataclass

from d3opt.executor.pieces import Split
from d3opt.system import Tier

#: Messages in the order they happen in one request.
MESSAGE_ORDER = ("device->edge", "device->cloud", "edge->cloud", "cloud->edge", "cloud->device",
                 "edge->device")


def link_name(src: Tier, dst: Tier) -> str:
    """The :data:`d3opt.plan.LINK_USES` name of a message from ``src`` to ``dst``."""
    return f"{src.name.lower()}->{dst.name.lower()}"


@dataclass(frozen=True)
class Route:
    """One message: a link use and its ``(tensor name, final destination tier)`` entries."""

    link: str
    src: Tier
    dst: Tier
    entries: tuple[tuple[str, Tier], ...]


def routes(split: Split, *, direct: bool) -> dict[str, Route]:
    """The non-empty messages of one request under ``split``, by link name, in order."""
    made = {name: Tier.DEVICE for name in split.inputs}
    for piece in split.pieces:
        made.update({name: piece.tier for name in piece.outputs})
    wanted: dict[str, set[Tier]] = {}
    for piece in split.pieces:
        for name in piece.inputs:
            wanted.setdefault(name, set()).add(piece.tier)
    for name in split.outputs:
        wanted.setdefault(name, set()).add(Tier.DEVICE)
    legs: dict[str, list[tuple[str, Tier]]] = {link: [] for link in MESSAGE_ORDER}
    for name in made:
        here = made[name]
        for dest in sorted(wanted.get(name, ())):
            if dest == here:
                continue
            if here < dest:
                path = [here, dest] if direct or (here, dest) != (Tier.DEVICE, Tier.CLOUD) \
                    else [Tier.DEVICE, Tier.EDGE, Tier.CLOUD]
            else:  # a result going back to the device
                path = [here, dest] if direct or here != Tier.CLOUD \
                    else [Tier.CLOUD, Tier.EDGE, Tier.DEVICE]
            for a, b in zip(path, path[1:]):
                legs[link_name(a, b)].append((name, dest))
    return {link: Route(link, Tier[link.split("->")[0].upper()],
                        Tier[link.split("->")[1].upper()], tuple(entries))
            for link, entries in legs.items() if entries}
