"""Benchmarks of vlkd against peers and baselines, measured in the same run.

``measure``: timing, peak memory, matmul throughput and the machine description;
``objectives``: ITC, IPOT, sparsemax against open_clip, POT and plain references;
``detection``: proposal embedding and ViLD training steps against naive / plain mmdet ones;
``training``: the CLIP recipe through mmengine against a plain loop, a ViT step against the
machine's matmul throughput. ``tools/benchmark.py`` prints them as one table.
"""
