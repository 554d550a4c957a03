"""Named experiment sizes: ``smoke`` (CI, about a minute per notebook), ``default`` (real
Fashion-MNIST on a 2-core CPU) and ``paper`` (the paper's Table 1 on GPUs).

Notebooks take ``profile`` as a papermill parameter and validate it here first, so a typo fails
with a clear message instead of silently running some other configuration.
"""

from __future__ import annotations

PROFILE_NAMES: tuple[str, ...] = ("smoke", "default", "paper")


def check_profile(name: str) -> str:
    """Return ``name`` if it is a known profile, else raise ``ValueError`` listing the valid ones."""
    if not isinstance(name, str) or name not in PROFILE_NAMES:
        raise ValueError(
            f"profile={name!r} is not a known profile; choose one of {', '.join(PROFILE_NAMES)}"
        )
    return name
