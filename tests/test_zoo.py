"""The model zoo: names, seeding, eval mode and published parameter counts."""

import pytest
import torch

from d3opt import GraphError, zoo

PUBLISHED_M = {"alexnet": 61.1, "vgg16": 138.4, "resnet18": 11.7, "resnet50": 25.6,
               "mobilenet_v2": 3.5, "googlenet": 6.6}


def test_names():
    assert set(zoo.names()) == set(PUBLISHED_M)
    assert zoo.names(include_demo=True) == (*zoo.names(), "tinycnn")


@pytest.mark.parametrize("name", sorted(PUBLISHED_M))
def test_parameter_counts_match_the_published_ones(name):
    params = sum(p.numel() for p in zoo.get(name).parameters())
    # the published counts are given to 0.1M; the exact ones agree to 50k parameters
    assert abs(params / 1e6 - PUBLISHED_M[name]) <= 0.05 + 1e-9
    assert abs(params - zoo.PUBLISHED_PARAMS[name]) <= 50_000


def test_seeding_and_mode():
    a, b, c = zoo.get("tinycnn", seed=3), zoo.get("tinycnn", seed=3), zoo.get("tinycnn", seed=4)
    assert not a.training
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["fc.weight"], sc["fc.weight"])
    state = torch.random.get_rng_state()
    zoo.get("tinycnn")
    assert torch.equal(state, torch.random.get_rng_state())


def test_example_inputs():
    x = zoo.example_input("googlenet", batch=2, dtype=torch.float64)
    assert x.shape == (2, 3, 224, 224) and x.dtype == torch.float64
    assert torch.equal(zoo.example_input("tinycnn"), zoo.example_input("tinycnn"))
    model = zoo.get("tinycnn")
    with torch.no_grad():
        assert model(zoo.example_input("tinycnn", batch=3)).shape == (3, 10)


def test_unknown_model():
    with pytest.raises(GraphError, match="'lenet'.*available"):
        zoo.get("lenet")
    with pytest.raises(GraphError, match="lenet"):
        zoo.example_input("lenet")
