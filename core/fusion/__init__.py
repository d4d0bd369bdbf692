"""The fusing kernel backend of jit, after tinygrad's layout: `schedule` (what fuses) ->
`kernel` (one kernel description) -> renderers (`render_c`, `render_cuda`) -> runtimes
(`runtime_c`, `runtime_cuda`). The executor that drives them is `core/executors/fused.py`."""
