"""The ``d3opt`` command line: solve, scenarios, methods, and one-line errors."""

from __future__ import annotations

import json
import math

import pytest

from d3opt.cli import SUBCOMMANDS, build_parser, main, parse_pins
from d3opt.cost import CostModel
from d3opt.errors import ConfigError
from d3opt.plan import Plan, evaluate_assignment
from d3opt.solvers import methods
from d3opt.system import Tier, builtin_scenarios, scenario

PROFILE = (
    "model,block,input_layer,output_layer,output_bytes,device-raspi4,edge-2500,edge-vm2Core,"
    "cloud-6700k(GPU)\n"
    "net,0,0,3,4128,0.40,0.080,0.060,0.004\n"
    "net,1,4,7,1128,0.30,0.060,0.040,0.003\n"
    "net,2,8,9,168,0.05,0.010,0.008,0.001\n"
)


@pytest.fixture
def profile(tmp_path):
    path = tmp_path / "blocks.csv"
    path.write_text(PROFILE)
    return path


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_methods_lists_every_registered_method(capsys):
    status, out, _ = run(capsys, "methods")
    assert status == 0
    listed = {line.split()[0] for line in out.splitlines()[1:]}
    assert listed == set(methods())


def test_scenarios_lists_every_shipped_scenario_with_its_description(capsys):
    status, out, _ = run(capsys, "scenarios")
    assert status == 0
    for name in builtin_scenarios():
        line = next(line for line in out.splitlines() if line.split()[0] == name)
        assert scenario(name).description in line


def test_solve_profile_json_matches_evaluate(capsys, profile):
    status, out, _ = run(capsys, "solve", "--profile", str(profile), "--profile-model", "net",
                         "--scenario", "wired", "--method", "dads", "--json")
    assert status == 0
    data = json.loads(out)
    assert set(data["assignment"]) == {"input", "block0", "block1", "block2"}
    from d3opt.frontends.profile import from_profile

    system = scenario("wired")
    cost = CostModel(from_profile(profile, model="net"), system.nodes, system.network)
    check = evaluate_assignment(cost, data["assignment"])
    assert math.isclose(data["latency"], check.latency, rel_tol=1e-12)
    # Measured times are used: all on the device takes 0.75 s, so DADS must beat that.
    assert data["latency"] < 0.75


def test_solve_prints_the_plan_table_and_saves_json(capsys, profile, tmp_path):
    saved = tmp_path / "plan.json"
    status, out, _ = run(capsys, "solve", "--profile", str(profile), "--profile-model", "net",
                         "--scenario", "wired", "--method", "device", "--save", str(saved))
    assert status == 0
    # All on the device: 0.40 + 0.30 + 0.05 s of measured time, nothing sent.
    assert "latency 750.000 ms" in out
    assert any(line.split()[:4] == ["device", "input", "block2", "4"] for line in out.splitlines())
    plan = Plan.from_json(saved.read_text())
    assert set(plan.assignment.values()) == {Tier.DEVICE}


def test_solve_honours_pins(capsys, profile):
    status, out, _ = run(capsys, "solve", "--profile", str(profile), "--profile-model", "net",
                         "--scenario", "wired", "--method", "neurosurgeon", "--json",
                         "--pin", "block1=device", "--pin", "block2=cloud")
    assert status == 0
    data = json.loads(out)
    assert data["assignment"]["block1"] == "device" and data["assignment"]["block2"] == "cloud"
    assert data["pins"] == {"block1": "device", "block2": "cloud"}


def test_solve_a_zoo_model_with_a_toml_path(capsys):
    path = builtin_scenarios()["4g"]
    status, out, _ = run(capsys, "solve", "--model", "tinycnn", "--scenario", str(path),
                         "--method", "edge")
    assert status == 0
    assert "scenario 4g (K=4)" in out
    assert any(line.split()[:2] == ["edge", "stem.conv"] for line in out.splitlines())


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--scenario", "5g-mmwave"], "5g-mmwave"),
        (["--pin", "block1"], "block1"),
        (["--pin", "block1=fog"], "fog"),
        (["--pin", "nope=edge"], "nope"),
        (["--profile-model", "resnet9000"], "resnet9000"),
        (["--method", "dads", "--time-limit", "5"], "time-limit"),
        (["--pin", "block0=edge", "--pin", "block1=device"], "pins"),
    ],
)
def test_errors_print_one_line_and_exit_2(capsys, profile, argv, named):
    base = ["solve", "--profile", str(profile), "--scenario", "wired", "--method", "dads"]
    if "--profile-model" not in argv:
        base += ["--profile-model", "net"]
    status, out, err = run(capsys, *base, *argv)
    assert status == 2 and out == ""
    assert err.startswith("d3opt: error:") and err.count("\n") == 1
    assert named in err and "Traceback" not in err


def test_missing_model_and_bad_arguments_exit_2(capsys, profile):
    for argv in ([], ["solve"], ["solve", "--model", "x", "--profile", str(profile)],
                 ["solve", "--model", "tinycnn", "--method", "magic"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    status, _, err = run(capsys, "solve", "--profile", str(profile))
    assert status == 2 and "--profile-model" in err
    status, _, err = run(capsys, "solve", "--model", "missing.onnx")
    assert status == 2 and "missing.onnx" in err


def test_every_registered_subcommand_is_reachable(capsys):
    parser = build_parser()
    names = [target.split(":")[1].removeprefix("add_").removesuffix("_parser")
             for target in SUBCOMMANDS]
    assert {"solve", "scenarios", "methods"} <= set(names)
    for name in names:
        with pytest.raises(SystemExit) as exc:
            parser.parse_args([name, "--help"])
        assert exc.value.code == 0
        assert f"usage: d3opt {name}" in capsys.readouterr().out


def test_parse_pins_rejects_malformed_items():
    assert parse_pins(["a=b=edge"]) == {"a=b": Tier.EDGE}
    for bad in ("noequals", "=edge", "x=sky"):
        with pytest.raises(ConfigError):
            parse_pins([bad])
