"""acme-capscope: one stack, shipped through the capscope.stacks entry point."""

import capscope

__all__ = ["tenant"]


def _from_data(data):
    """A `[tenant]` table: `name = "..."`, nothing else."""
    if not isinstance(data, dict) or set(data) != {"name"}:
        raise capscope.PolicyConfigError("tenant", f"expected name = '...', got {data!r}")
    return data["name"]


tenant = capscope.AmbientStack(
    "tenant",
    inherit=capscope.Inherit.COPY,
    codec=(lambda name: {"name": name}, _from_data),
    doc="the tenant this work is for",
)
