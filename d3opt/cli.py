"""The ``d3opt`` command line.

Subcommands: ``solve`` (plan one model on one scenario and print the plan table),
``scenarios`` (list the shipped scenarios), ``methods`` (list the solvers). Each subcommand
is one ``add_<name>_parser(subparsers)`` function, listed in :data:`SUBCOMMANDS` as
``"module:function"``; the function adds its parser and sets ``run`` (``args -> exit
status``) with ``set_defaults``. Commands that need a model and a scenario reuse
:func:`add_instance_arguments` and :func:`load_instance`.

Errors d3opt raises on purpose (:class:`~d3opt.errors.D3optError`) print one line to stderr
and exit with status 2; so do bad command-line arguments.

Examples
--------
>>> main(["methods"])  # doctest: +ELLIPSIS
method        description
brute         The optimal plan by exhaustive enumeration (only for tiny graphs).
...
0
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from d3opt.errors import ConfigError, D3optError
from d3opt.graph import LayerGraph
from d3opt.report import format_table, plan_table
from d3opt.solve import solve
from d3opt.solvers import get_solver, methods
from d3opt.system import Scenario, Tier, builtin_scenarios, load_scenario, scenario

#: ``"module:function"`` of every subcommand's ``add_<name>_parser(subparsers)``.
SUBCOMMANDS = (
    "d3opt.cli:add_solve_parser",
    "d3opt.cli:add_scenarios_parser",
    "d3opt.cli:add_methods_parser",
    "d3opt.cli_compare:add_compare_parser",
    "d3opt.cli_replay:add_replay_parser",
    "d3opt.cli_validate:add_validate_parser",
)


@dataclass(frozen=True)
class Instance:
    """What a command solves: a layer graph, a scenario and the user's pins."""

    graph: LayerGraph
    scenario: Scenario
    pins: dict[str, Tier]
    label: str


def parse_pins(items: Sequence[str]) -> dict[str, Tier]:
    """``["layer=tier", ...]`` as ``{layer: Tier}`` (ConfigError naming a malformed item).

    >>> parse_pins(["conv1=device", "fc=cloud"])
    {'conv1': <Tier.DEVICE: 0>, 'fc': <Tier.CLOUD: 2>}
    """
    pins = {}
    for item in items:
        layer, sep, tier = item.rpartition("=")
        if not sep or not layer:
            raise ConfigError(f"--pin expects layer=tier (device, edge or cloud), got {item!r}")
        pins[layer] = Tier.parse(tier)
    return pins


def load_graph(*, model: str | None = None, profile: str | None = None,
               profile_model: str | None = None) -> LayerGraph:
    """The layer graph of a zoo model name, an ``.onnx`` file, or a measured profile CSV.

    Parameters
    ----------
    model : a name from :mod:`d3opt.zoo` (traced with :func:`d3opt.from_torch`) or the path
        of an ``.onnx`` file (read with :func:`d3opt.from_onnx`).
    profile, profile_model : a per-block latency CSV and the model to take from it (read
        with :func:`d3opt.from_profile`).
    """
    if (model is None) == (profile is None):
        raise ConfigError("give either --model or --profile (with --profile-model)")
    if profile is not None:
        if profile_model is None:
            raise ConfigError("--profile needs --profile-model NAME (the model column value)")
        from d3opt.frontends.profile import from_profile

        return from_profile(profile, model=profile_model)
    if model.endswith(".onnx"):
        if not Path(model).is_file():
            raise ConfigError(f"ONNX file {model!r} does not exist")
        from d3opt.frontends.onnx import from_onnx

        return from_onnx(model)
    from d3opt import zoo
    from d3opt.frontends.torch import from_torch

    return from_torch(zoo.get(model), zoo.example_input(model))


def add_instance_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--model``/``--profile``/``--profile-model``, ``--scenario`` and ``--pin``."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="zoo model name (e.g. resnet18) or path of an .onnx file")
    source.add_argument("--profile", metavar="CSV", help="measured per-block latency table")
    parser.add_argument("--profile-model", metavar="NAME", help="model to read from --profile")
    parser.add_argument("--scenario", default="wifi",
                        help="shipped scenario name (see 'd3opt scenarios') or a TOML path "
                             "(default: wifi)")
    parser.add_argument("--pin", action="append", default=[], metavar="LAYER=TIER",
                        help="run LAYER on TIER (device, edge or cloud); repeatable")


def load_instance(args: argparse.Namespace) -> Instance:
    """The :class:`Instance` named by the arguments of :func:`add_instance_arguments`."""
    pins = parse_pins(args.pin)
    system = scenario(args.scenario)
    graph = load_graph(model=args.model, profile=args.profile, profile_model=args.profile_model)
    label = args.model if args.model is not None else f"{args.profile_model} ({args.profile})"
    return Instance(graph=graph, scenario=system, pins=pins, label=label)


def _run_solve(args: argparse.Namespace) -> int:
    options = {}
    if args.time_limit is not None:
        if "time_limit" not in inspect.signature(get_solver(args.method)).parameters:
            raise ConfigError(f"method {args.method!r} takes no --time-limit")
        options["time_limit"] = args.time_limit
    inst = load_instance(args)
    system = inst.scenario
    plan = solve(inst.graph, system.nodes, system.network, args.method, pins=inst.pins,
                 **options)
    if args.save is not None:
        Path(args.save).write_text(plan.to_json(indent=2) + "\n")
    if args.json:
        print(plan.to_json(indent=2))
    else:
        print(f"{inst.label}: {len(inst.graph)} layers, {inst.graph.total_flops / 1e9:.3f} "
              f"GFLOPs; scenario {system.name} (K={system.nodes.K}); method {args.method}\n")
        print(plan_table(plan, inst.graph))
    return 0


def add_solve_parser(subparsers) -> None:
    """``d3opt solve``: plan one model on one scenario."""
    parser = subparsers.add_parser(
        "solve", help="find where each layer runs and print the plan",
        description="Find where each layer of a model runs on a scenario and print the plan.")
    add_instance_arguments(parser)
    parser.add_argument("--method", default="milp", choices=sorted(methods()),
                        help="solver (default: milp; see 'd3opt methods')")
    parser.add_argument("--time-limit", type=float, metavar="S",
                        help="seconds the solver may run (methods that support it)")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument("--save", metavar="PATH", help="also write the plan as JSON to PATH")
    parser.set_defaults(run=_run_solve)


def _run_scenarios(args: argparse.Namespace) -> int:
    rows = []
    for name, path in builtin_scenarios().items():
        system = load_scenario(path)
        rows.append([name, system.nodes.K, system.description])
    print(format_table(["scenario", "K", "description"], rows))
    return 0


def add_scenarios_parser(subparsers) -> None:
    """``d3opt scenarios``: list the shipped scenarios."""
    parser = subparsers.add_parser("scenarios", help="list the shipped scenarios",
                                   description="List the scenarios shipped with d3opt.")
    parser.set_defaults(run=_run_scenarios)


def _run_methods(args: argparse.Namespace) -> int:
    rows = []
    for name in sorted(methods()):
        try:
            doc = inspect.getdoc(get_solver(name)) or ""
        except ImportError as err:
            doc = f"(unavailable: {err})"
        rows.append([name, doc.splitlines()[0] if doc else ""])
    print(format_table(["method", "description"], rows))
    return 0


def add_methods_parser(subparsers) -> None:
    """``d3opt methods``: list the solvers."""
    parser = subparsers.add_parser("methods", help="list the solver methods",
                                   description="List the solver methods d3opt ships.")
    parser.set_defaults(run=_run_methods)


def build_parser() -> argparse.ArgumentParser:
    """The ``d3opt`` argument parser with every subcommand in :data:`SUBCOMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="d3opt", description="Where each layer of a DNN runs across device, edge and "
                                  "cloud -- and how good that is.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for target in SUBCOMMANDS:
        module, function = target.split(":")
        getattr(importlib.import_module(module), function)(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``d3opt`` command line; returns the exit status (2 on a d3opt error)."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except D3optError as err:
        message = " ".join(str(err).split())
        print(f"d3opt: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
