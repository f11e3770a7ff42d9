"""acme-capscope: one stack, shipped through the capscope.stacks entry point."""

import capscope

__all__ = ["tenant"]

tenant = capscope.AmbientStack(
    "tenant",
    inherit=capscope.Inherit.COPY,
    doc="the tenant this work is for",
)
