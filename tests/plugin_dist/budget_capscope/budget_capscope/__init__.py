"""budget-capscope: a `budget` stack whose check refuses what costs too much.

A push narrows (the smaller budget holds), a worker copies its parent's
budget, and policy files and envelopes carry it as `[budget] credits = N`.
A call's cost is its `cost` argument; a command costs 1, and `deploy` or a
command line mentioning it is refused outright once the budget is spent.
"""

import attrs

import capscope

__all__ = ["Budget", "budget"]


def _credits(value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise capscope.PolicyConfigError("credits", f"expected a whole number >= 0, got {value!r}")
    return value


@attrs.frozen
class Budget:
    """How many credits the work in this scope may still spend."""

    credits: int = attrs.field(converter=_credits)

    def narrow(self, inner):
        return Budget(min(self.credits, inner.credits))

    def verdict(self, call):
        if call.command is not None:
            cost = 1
        else:
            cost = call.arguments.get("cost", 1)
        if not isinstance(cost, int) or isinstance(cost, bool):
            return capscope.Verdict.deny(f"cost {cost!r} is not a number", gate="bad_cost")
        if cost > self.credits:
            return capscope.Verdict.deny(
                f"{call.tool} costs {cost}, only {self.credits} left", gate="over_limit"
            )
        if cost * 2 > self.credits:
            return capscope.Verdict.ask(
                f"{call.tool} costs {cost}, over half of the {self.credits} left",
                gate="costly",
            )
        return None

    def describe(self):
        return f"Budget: {self.credits} credits left."

    def to_dict(self):
        return {"credits": self.credits}

    @classmethod
    def from_dict(cls, data, *, path="budget"):
        if not isinstance(data, dict) or set(data) != {"credits"}:
            raise capscope.PolicyConfigError(path, f"expected credits = N, got {data!r}")
        return cls(data["credits"])


budget = capscope.AmbientStack.for_policy(
    "budget", Budget, inherit=capscope.Inherit.COPY, doc="credits the work may still spend"
)
