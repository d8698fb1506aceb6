"""``d3opt compare``: run several methods on one instance and print the comparison table.

Two ways to give the instance:

- a zoo model (or ``.onnx`` file) on a scenario::

      d3opt compare --model resnet18 --scenario wifi

- a measured profile (Scission's per-block latency table) with the systems that play each
  tier and the measured network between them::

      d3opt compare --profile blocks.csv --model vgg19 --device device-raspi4 \\
          --edge edge-2500 --cloud "cloud-6700k(GPU)" --network network_wifi.csv

  Here ``--model`` names the model column value of the profile; ``--edge`` may be repeated
  (one edge node per system).

Examples
--------
>>> import argparse
>>> parser = argparse.ArgumentParser(prog="d3opt")
>>> add_compare_parser(parser.add_subparsers())
>>> args = parser.parse_args(["compare", "--model", "resnet18", "--methods", "hpa,cloud"])
>>> args.methods, args.scenario
('hpa,cloud', 'wifi')
"""

from __future__ import annotations

import argparse

from d3opt.compare import DEFAULT_METHODS
from d3opt.errors import ConfigError


def _methods(text: str) -> tuple[str, ...]:
    names = tuple(m.strip() for m in text.split(",") if m.strip())
    if not names:
        raise ConfigError("--methods needs at least one method name")
    return names


def _run(args: argparse.Namespace) -> int:
    from d3opt.cli import load_graph, parse_pins
    from d3opt.compare import compare
    from d3opt.system import scenario

    pins = parse_pins(args.pin)
    options = {} if args.time_limit is None else {"time_limit": args.time_limit}
    if args.profile is not None:
        missing = [flag for flag, value in (("--model", args.model), ("--device", args.device),
                                            ("--edge", args.edge), ("--cloud", args.cloud),
                                            ("--network", args.network)) if not value]
        if missing:
            raise ConfigError(f"--profile needs {', '.join(missing)} (systems per tier and the "
                              "measured network)")
        from d3opt.frontends.profile import scission_system

        graph = load_graph(profile=args.profile, profile_model=args.model)
        nodes, network = scission_system(args.network, device=args.device, edge=args.edge,
                                         cloud=args.cloud)
        label = (f"{args.model} (profile): device {args.device}, edge {', '.join(args.edge)}, "
                 f"cloud {args.cloud}; {len(graph)} layers")
    else:
        if args.model is None:
            raise ConfigError("give --model (a zoo name or .onnx file) or --profile")
        stray = [flag for flag, value in (("--device", args.device), ("--edge", args.edge),
                                          ("--cloud", args.cloud), ("--network", args.network))
                 if value]
        if stray:
            raise ConfigError(f"{', '.join(stray)} only apply with --profile; "
                              "use --scenario otherwise")
        graph = load_graph(model=args.model)
        system = scenario(args.scenario)
        nodes, network = system.nodes, system.network
        label = (f"{args.model}: {len(graph)} layers, {graph.total_flops / 1e9:.3f} GFLOPs; "
                 f"scenario {system.name} (K={nodes.K})")
    result = compare(graph, nodes, network, methods=_methods(args.methods), pins=pins,
                     label=label, **options)
    print(result.table())
    return 0


def add_compare_parser(subparsers) -> None:
    """Add ``d3opt compare`` to ``subparsers`` (see the module docstring)."""
    parser = subparsers.add_parser(
        "compare", help="compare methods on one model and scenario",
        description="Run several methods on one instance and print latency, stage times, "
                    "backbone bytes, solve time and the gap to the MILP optimum.")
    parser.add_argument("--model", help="zoo model name or .onnx path; with --profile, the "
                                        "model name in the profile")
    parser.add_argument("--profile", metavar="CSV", help="measured per-block latency table")
    parser.add_argument("--scenario", default="wifi",
                        help="shipped scenario or TOML path (default: wifi; not with --profile)")
    parser.add_argument("--device", metavar="SYSTEM", help="profile system run as the device")
    parser.add_argument("--edge", metavar="SYSTEM", action="append", default=[],
                        help="profile system run as an edge node; repeatable")
    parser.add_argument("--cloud", metavar="SYSTEM", help="profile system run as the cloud")
    parser.add_argument("--network", metavar="CSV", help="measured network table (with --profile)")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                        help=f"comma-separated methods (default: {','.join(DEFAULT_METHODS)})")
    parser.add_argument("--pin", action="append", default=[], metavar="LAYER=TIER",
                        help="run LAYER on TIER (device, edge or cloud); repeatable")
    parser.add_argument("--time-limit", type=float, metavar="S",
                        help="seconds the MILP may run")
    parser.set_defaults(run=_run)
