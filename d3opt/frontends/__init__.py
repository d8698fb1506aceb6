"""Frontends: build a :class:`d3opt.LayerGraph` from a model or a measured profile.

- :mod:`d3opt.frontends.torch`: a ``torch.nn.Module`` via ``torch.export`` (``from_torch``).
- :mod:`d3opt.frontends.onnx`: an ONNX model via ONNX shape inference (``from_onnx``).
- :mod:`d3opt.frontends.profile`: a measured per-block latency CSV (``from_profile``).

This package imports nothing heavy; each frontend imports torch or onnx when it is used.

>>> import d3opt.frontends, sys
>>> "d3opt.frontends.torch" in sys.modules or "frontends" in d3opt.frontends.__name__
True
"""
