"""The AI tools merchants run. `registry.get(slug)` is the way in."""

from agents.tools.base import InvalidToolInput, MerchantProfile, Tool, UnknownTool

__all__ = ["InvalidToolInput", "MerchantProfile", "Tool", "UnknownTool"]
