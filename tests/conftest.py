"""Shared test configuration: Hypothesis profiles.

``HYPOTHESIS_PROFILE`` picks one; without it, ``ci`` when ``CI`` is set, else ``dev``.

- ``ci``: bounded and derandomised, so a CI run is reproducible and never flaky.
- ``dev``: Hypothesis' defaults without a deadline (first calls compile regexes etc.).
- ``fuzz``: long local runs, ``HYPOTHESIS_PROFILE=fuzz pytest tests/test_wire.py``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=100,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None)
settings.register_profile(
    "fuzz",
    max_examples=20_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)
