"""The primitive registry. A primitive is a name; every transform keeps a rule table keyed by
primitive, so adding a primitive adds rows here and never edits an interpreter."""
from __future__ import annotations


class Primitive:
    """A named operation. `multiple_results` primitives return a list of values."""

    __slots__ = ("name", "multiple_results")

    def __init__(self, name: str, multiple_results: bool = False):
        self.name = name
        self.multiple_results = multiple_results

    def __repr__(self) -> str:
        return self.name

    def bind(self, *args, **params):
        from .trace import bind

        return bind(self, *args, **params)


# impl(*arrays, **params) over the array module (numpy or cupy, chosen from the inputs)
impl_rules: dict[Primitive, object] = {}
# shape_rule(*avals, **params) -> aval (or list of avals for multiple results)
shape_rules: dict[Primitive, object] = {}
# jvp_rule(primals, tangents, **params) -> (primals_out, tangents_out), both lists;
# tangents may be `Zero` instances
jvp_rules: dict[Primitive, object] = {}
# transpose_rule(cts, *args, **params) -> list of cotangents (one per arg, None when not linear);
# linear arguments arrive as `UndefPrimal`
transpose_rules: dict[Primitive, object] = {}
# batch_rule(axis_size, vals, dims, **params) -> (out, out_dim) or (outs, out_dims)
batch_rules: dict[Primitive, object] = {}
# C expression template for elementwise primitives, used by the kernel generator: "exp({0})"
c_exprs: dict[Primitive, str] = {}
# primitives whose equations must never be merged by CSE or folded (side effects, callbacks)
effectful: set[Primitive] = set()
