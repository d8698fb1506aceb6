"""Shared test configuration: one derandomised hypothesis profile for every test."""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "d3opt",
    derandomize=True,
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("d3opt")
