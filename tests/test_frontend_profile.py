"""The profile frontend on a shipped fixture and (when present) on the real Scission data."""

import csv
import math
from pathlib import Path

import pytest

from d3opt import CostModel, D3optError, GraphError, ConfigError, Tier
from d3opt.frontends.profile import DEFAULT_EDGE_EDGE, from_profile, scission_system
from d3opt.plan import evaluate_assignment

DATA = Path(__file__).parent / "data"
BLOCKS = DATA / "profile_blocks.csv"
NETWORK = DATA / "profile_network.csv"
SCISSION = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scission"


def test_blocks_become_a_chain_in_block_order():
    g = from_profile(BLOCKS, model="tiny")
    assert g.order == ("input", "block0", "block1", "block2")
    assert g.edges == (("input", "block0"), ("block0", "block1"), ("block1", "block2"))
    # output_bytes minus the 128-byte .npy header
    assert [g[n].out_bytes for n in g.order[1:]] == [2000, 1000, 40]
    assert dict(g["block1"].times) == {"device-pi": 0.20, "edge-a": 0.02, "edge-b": 0.04,
                                       "cloud-gpu": 0.002}
    assert g["block1"].source == ("3", "5")
    assert all(g[n].op == "other" and g[n].flops == 0 for n in g.order[1:])


def test_default_and_explicit_input_bytes():
    assert from_profile(BLOCKS, model="tiny")["input"].out_bytes == 224 * 224 * 3 * 4
    assert from_profile(BLOCKS, model="xception")["input"].out_bytes == 299 * 299 * 3 * 4
    assert from_profile(BLOCKS, model="tiny", input_bytes=10)["input"].out_bytes == 10


def test_measured_times_drive_the_cost_model():
    g = from_profile(BLOCKS, model="tiny", input_bytes=1000)
    nodes, net = scission_system(NETWORK, device="device-pi", edge=["edge-a", "edge-b"],
                                 cloud="cloud-gpu", blocks_csv=BLOCKS)
    cost = CostModel(g, nodes, net)
    on_device = evaluate_assignment(cost, {n: Tier.DEVICE for n in g})
    assert on_device.latency == pytest.approx(0.10 + 0.20 + 0.05)
    # input on the device, blocks on the coordinator edge node "edge-a" (8 Mbit/s, 20 ms):
    # send 1000 bytes, compute, return the 40-byte result
    on_edge = evaluate_assignment(cost, {"input": Tier.DEVICE,
                                         **{n: Tier.EDGE for n in g.order[1:]}})
    expected = (0.02 + 1000 / 1e6) + (0.01 + 0.02 + 0.005) + (0.02 + 40 / 1e6)
    assert on_edge.latency == pytest.approx(expected)


def test_scission_system_links():
    nodes, net = scission_system(NETWORK, device="device-pi", edge=["edge-a", "edge-b"],
                                 cloud="cloud-gpu")
    assert [n.name for n in nodes.all] == ["device-pi", "edge-a", "edge-b", "cloud-gpu"]
    assert net.device_edge.bandwidth == pytest.approx(1e6) and net.device_edge.latency == 0.02
    assert net.edge_cloud.bandwidth == pytest.approx(1e7) and net.edge_cloud.latency == 0.01
    assert net.device_cloud.bandwidth == pytest.approx(2.5e5)
    assert net.edge_edge.bandwidth == pytest.approx(5e7) and net.edge_edge.latency == 0.001
    _, single = scission_system(NETWORK, device="device-pi", edge="edge-b", cloud="cloud-gpu")
    assert single.edge_edge == DEFAULT_EDGE_EDGE
    assert single.device_edge.bandwidth == pytest.approx(5e5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(device="device-zz", edge="edge-a", cloud="cloud-gpu"), "device-zz"),
    (dict(device="device-pi", edge=[], cloud="cloud-gpu"), "edge"),
])
def test_scission_system_rejects_unknown_systems(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        scission_system(NETWORK, blocks_csv=BLOCKS, **kwargs)


def test_scission_system_missing_link(tmp_path):
    path = tmp_path / "net.csv"
    path.write_text("source,destination,ping(ms),bandwidth(mbps)\npi,a,20,8\n")
    with pytest.raises(ConfigError, match="edge-cloud"):
        scission_system(path, device="device-pi", edge="edge-a", cloud="cloud-gpu")
    with pytest.raises(ConfigError, match="does not exist"):
        scission_system(tmp_path / "nope.csv", device="device-pi", edge="edge-a",
                        cloud="cloud-gpu")


def _write(tmp_path, text):
    path = tmp_path / "blocks.csv"
    path.write_text(text)
    return path


HEAD = "model,block,input_layer,output_layer,output_bytes,device-pi\n"


@pytest.mark.parametrize("text, message", [
    (HEAD + "m,0,0,1,200,nan\n", "block 0.*nan"),
    (HEAD + "m,0,0,1,200,-1\n", "block 0.*negative"),
    (HEAD + "m,0,0,1,200,\n", "block 0.*not a number"),
    (HEAD + "m,0,0,1,200,1\nm,0,2,3,200,1\n", "block 0 appears twice"),
    ("model,block,output_bytes,device-pi\nm,0,200,1\n", "lacks columns"),
    ("model,block,input_layer,output_layer,output_bytes\nm,0,0,1,200\n", "no time column"),
])
def test_bad_profiles(tmp_path, text, message):
    with pytest.raises(GraphError, match=message):
        from_profile(_write(tmp_path, text), model="m")


def test_unknown_model_lists_the_available_ones(tmp_path):
    with pytest.raises(GraphError, match=r"'resnet'.*\['other', 'tiny', 'xception'\]"):
        from_profile(BLOCKS, model="resnet")
    with pytest.raises(GraphError, match="does not exist"):
        from_profile(tmp_path / "missing.csv", model="tiny")
    with pytest.raises(D3optError):
        from_profile(42, model="tiny")


needs_data = pytest.mark.skipif(not SCISSION.is_dir(), reason="../shared/data is not present")


@needs_data
@pytest.mark.parametrize("model", ["vgg16", "resnet50", "inception_v3", "nasnetlarge"])
def test_real_scission_profiles(model):
    with (SCISSION / "blocks.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["model"] == model]
    g = from_profile(SCISSION / "blocks.csv", model=model)
    assert len(g) == len(rows) + 1
    last = max(rows, key=lambda r: int(r["block"]))
    assert g[g.outputs[0]].out_bytes == int(last["output_bytes"]) - 128
    assert g[g.outputs[0]].times["cloud-6700k(GPU)"] == float(last["cloud-6700k(GPU)"])
    assert all(math.isfinite(t) and t >= 0 for n in g.order[1:] for t in g[n].times.values())


@needs_data
def test_real_scission_network():
    nodes, net = scission_system(SCISSION / "network_wifi.csv", device="device-raspi4",
                                 edge=["edge-2500", "edge-vm2Core"], cloud="cloud-6700k(GPU)",
                                 blocks_csv=SCISSION / "blocks.csv")
    assert net.device_edge.bandwidth == pytest.approx(1.6e6 / 8)
    assert net.device_edge.latency == pytest.approx(0.0667)
    assert net.device_cloud.latency == pytest.approx(0.1)
    assert net.edge_cloud.bandwidth == pytest.approx(50e6 / 8)
    g = from_profile(SCISSION / "blocks.csv", model="vgg16")
    cost = CostModel(g, nodes, net)
    with (SCISSION / "blocks.csv").open() as handle:
        device_total = sum(float(r["device-raspi4"]) for r in csv.DictReader(handle)
                           if r["model"] == "vgg16")
    latency = evaluate_assignment(cost, {n: Tier.DEVICE for n in g}).latency
    assert latency == pytest.approx(device_total)
