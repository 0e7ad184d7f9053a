"""The fuzz profile: deterministic (derandomized, no example database) so CI sees the same examples each run.

Each test takes it as a parent, ``@settings(FUZZ, max_examples=examples(N))``, instead of loading it
globally, so other hypothesis tests keep their own settings. ``LIFECYCLE_FUZZ_SCALE`` multiplies every
example count for a longer local run (``LIFECYCLE_FUZZ_SCALE=20 pytest tests/fuzz``).
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "fuzz",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
