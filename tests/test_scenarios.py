"""Shipped scenarios load, carry their cited figures, and bad TOML names the key at fault."""

from __future__ import annotations

import tomllib

import pytest

from d3opt.errors import ConfigError
from d3opt.system import builtin_scenarios, load_scenario, scenario

SHIPPED = builtin_scenarios()


def test_the_promised_scenarios_ship():
    assert {"3g", "4g", "wifi", "wired"} <= set(SHIPPED)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_shipped_scenario_loads(name):
    loaded = scenario(name)
    assert loaded.name == name
    assert loaded.description
    assert loaded.nodes.K in (2, 4)
    data = tomllib.loads(SHIPPED[name].read_text())
    # Every node and link in the file carries a note saying where its figures come from.
    tables = [data["nodes"]["device"], data["nodes"]["cloud"], *data["nodes"]["edge"]]
    tables += [v for v in data["network"].values() if isinstance(v, dict)]
    assert all(t.get("note") for t in tables)
    # Backbone between 10 and 100 Mbit/s; the device is the slowest node.
    assert 10e6 / 8 <= loaded.network.edge_cloud.bandwidth <= 100e6 / 8
    assert loaded.nodes.device.flops < min(n.flops for n in loaded.nodes.edge)
    assert loaded.nodes.cloud.flops > max(n.flops for n in loaded.nodes.edge)


def test_scission_wifi_figures():
    net = scenario("wifi").network
    assert net.device_edge.bandwidth == pytest.approx(1.6e6 / 8)
    assert net.device_edge.latency == pytest.approx(0.0667)
    assert net.edge_cloud.bandwidth == pytest.approx(50e6 / 8)
    assert net.edge_cloud.latency == pytest.approx(0.020)
    assert net.device_cloud.latency == pytest.approx(0.100)


def test_cellular_uplinks_are_slower_than_wired():
    uplink = {name: scenario(name).network.device_edge.bandwidth for name in SHIPPED}
    assert uplink["3g"] < uplink["4g"] < uplink["wired"]


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ('gflops = 14.8', 'gflops = "fast"', "nodes.device"),
        ('gflops = 14.8', 'glops = 14.8', "glops"),
        ("mbps = 1.6\nms = 66.7", "ms = 66.7", "network.device_edge"),
        ("mbps = 50\n", "mbps = -50\n", "network.edge_cloud"),
        ("mbps = 50\n", "mbsp = 50\n", "mbsp"),
        ('lan = "switched"', 'lan = "wireless"', "lan"),
        ("[network.edge_edge]", "[network.edge_lan]", "edge_edge"),
        ('name = "device-raspi4"\n', "", "name"),
        ("count = 2", "count = 0", "count"),
        ("count = 2", 'count = "two"', "count"),
        ("ms = 20\n", 'ms = "slow"\n', "network.edge_cloud: ms"),
        ("overhead_ms = 0.59", "overhead_ms = -1", "overhead_ms"),
    ],
)
def test_bad_toml_names_the_key(tmp_path, old, new, named):
    good = next(p.read_text() for p in SHIPPED.values() if old in p.read_text())
    path = tmp_path / "bad.toml"
    path.write_text(good.replace(old, new, 1))
    with pytest.raises(ConfigError, match=named):
        load_scenario(path)


def test_unparsable_toml_and_unknown_names(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[nodes.device\nname = 1")
    with pytest.raises(ConfigError, match="broken.toml"):
        load_scenario(path)
    with pytest.raises(ConfigError, match="wifi"):  # the message lists the shipped ones
        scenario("5g-mmwave")
