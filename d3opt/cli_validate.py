"""``d3opt validate``: run a plan with torch and print the executor's report.

::

    d3opt validate --model resnet18 --scenario wifi --method milp
    d3opt validate --model vgg16 --method hpa --mode distributed --size 64
    d3opt validate --model tinycnn --plan plan.json --dtype float64

Exit status 0 when the report is OK (output within tolerance, bytes as predicted), 1 when
not, 2 on a d3opt error.

Examples
--------
>>> import argparse
>>> parser = argparse.ArgumentParser(prog="d3opt")
>>> add_validate_parser(parser.add_subparsers())
>>> args = parser.parse_args(["validate", "--model", "resnet18", "--method", "hpa"])
>>> args.method, args.scenario, args.mode, args.dtype
('hpa', 'wifi', 'inprocess', 'float32')
"""

from __future__ import annotations

import argparse
from pathlib import Path

from d3opt.errors import ConfigError


def _run(args: argparse.Namespace) -> int:
    import torch

    from d3opt import zoo
    from d3opt.cli import parse_pins
    from d3opt.cost import CostModel
    from d3opt.executor import validate
    from d3opt.frontends.torch import from_torch
    from d3opt.plan import Plan, score
    from d3opt.solve import solve
    from d3opt.system import scenario

    if args.model not in zoo.names(include_demo=True):
        raise ConfigError(f"validate runs zoo models; unknown model {args.model!r}; "
                          f"available: {list(zoo.names(include_demo=True))}")
    model = zoo.get(args.model)
    shape = list(zoo.input_shape(args.model))
    if args.size is not None:
        shape[2:] = [args.size, args.size]
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    graph = from_torch(model, x)
    system = scenario(args.scenario)
    if args.plan is not None:
        plan = Plan.from_json(Path(args.plan).read_text())
        plan = score(plan, CostModel(graph, system.nodes, system.network))
    else:
        options = {} if args.time_limit is None else {"time_limit": args.time_limit}
        plan = solve(graph, system.nodes, system.network, method=args.method,
                     pins=parse_pins(args.pin), **options)
    report = validate(plan, model, x, graph=graph, nodes=system.nodes, network=system.network,
                      mode=args.mode, dtype=getattr(torch, args.dtype), timeout=args.timeout)
    tiles = ", ".join(f"{t.layers[0]}..{t.layers[-1]} x{t.k}" for t in plan.tiles) or "none"
    print(f"{args.model} ({'x'.join(map(str, shape))}) on {args.scenario}, method "
          f"{plan.method or 'from file'}: predicted latency {plan.latency * 1e3:.2f} ms; "
          f"tiled blocks: {tiles}")
    print(report)
    return 0 if report.ok else 1


def add_validate_parser(subparsers) -> None:
    """Add ``validate`` to a ``d3opt`` sub-parser set."""
    parser = subparsers.add_parser("validate", help="run a plan with torch and check it",
                                   description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="zoo model name (e.g. resnet18)")
    parser.add_argument("--scenario", default="wifi", help="shipped scenario name or TOML path")
    parser.add_argument("--method", default="milp", help="solver that makes the plan")
    parser.add_argument("--plan", metavar="JSON", help="run this plan (d3opt solve --save)")
    parser.add_argument("--time-limit", type=float, metavar="S", help="solver time limit")
    parser.add_argument("--pin", action="append", default=[], metavar="LAYER=TIER",
                        help="keep a layer on a tier (repeatable)")
    parser.add_argument("--mode", default="inprocess", choices=("inprocess", "distributed"))
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--size", type=int, metavar="PX", help="input side (default: the zoo's)")
    parser.add_argument("--timeout", type=float, default=300.0, metavar="S",
                        help="distributed mode: stop a run that has not finished by then")
    parser.set_defaults(run=_run)
