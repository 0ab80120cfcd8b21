"""A deserialized TensorRT engine behind edgert's :class:`~edgert.engines.base.Engine`.

Name-based I/O only (``num_io_tensors``, ``set_input_shape``,
``set_tensor_address``, ``execute_async_v3``: TensorRT 8.5+, section 6).  One
execution context and CUDA stream per engine instance.  Buffers per
:class:`EngineIO`:

* integrated GPU (Jetson): mapped pinned host memory; the engine reads and
  writes the very arrays preprocess and decoders use, nothing is copied and
  ``bytes_copied`` stays 0;
* discrete GPU: pinned host arrays plus device buffers, with async copies on
  the instance's stream, counted in ``bytes_copied``.

``io.extra["device_inputs"]`` (name -> device address) and ``io.extra["stream"]``
let a GPU preprocess stage write inputs on the device; it adds the input's
name to ``io.extra["device_written"]`` so ``run`` skips the host->device copy.

Optional CUDA graphs: after a normal run at a batch size, the enqueue is
captured once per (IO, batch size) and replayed; when capture fails the
engine keeps enqueueing normally (logged once).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set, Tuple

import numpy as np

from edgert.engines.base import Engine, EngineIO, TensorSpec
from edgert.errors import RuntimeFailure

if TYPE_CHECKING:  # pragma: no cover
    import tensorrt as trt

    from edgert import cuda as cuda_mod

log = logging.getLogger("edgert.engines.tensorrt.runtime")


class DeserializeError(RuntimeFailure):
    """The plan could not be deserialized (corrupt, or from another TensorRT/GPU)."""


def deserialize(plan: bytes, device: str,
                logger: "trt.ILogger") -> Tuple["trt.Runtime", "trt.ICudaEngine"]:
    import tensorrt as trt

    runtime = trt.Runtime(logger)
    if device.startswith("dla:"):
        runtime.DLA_core = int(device.split(":", 1)[1])  # before deserializing (section 1)
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise DeserializeError("TensorRT could not deserialize the %s engine" % device)
    return runtime, engine


class _IOState:
    """Per-EngineIO CUDA state: buffers, device addresses, captured graphs."""

    def __init__(self, stream: "cuda_mod.Stream") -> None:
        self.stream = stream
        self.host: List[Any] = []  # HostBuffers
        self.device: Dict[str, Any] = {}  # name -> DeviceBuffer (discrete GPUs)
        self.addr: Dict[str, int] = {}  # name -> address the engine uses
        self.graphs: Dict[int, Any] = {}  # batch size -> GraphExec

    def free(self) -> None:
        for g in self.graphs.values():
            g.free()
        for buf in list(self.device.values()) + self.host:
            buf.free()
        self.graphs, self.device, self.host, self.addr = {}, {}, [], {}


class TrtEngine(Engine):
    backend = "tensorrt"

    def __init__(self, plan: bytes, device: str, logger: "trt.ILogger",
                 info: Optional[Dict[str, Any]] = None, cuda_graphs: bool = False) -> None:
        import tensorrt as trt

        from edgert import cuda

        if not hasattr(trt.IExecutionContext, "execute_async_v3"):
            raise RuntimeFailure("TensorRT %s is older than 8.5; edgert needs name-based I/O "
                                 "(TensorRT 8.5+)" % getattr(trt, "__version__", "?"))
        self.device = device
        self.info = dict(info or {})
        self._logger = logger
        runtime, engine = deserialize(plan, device, logger)
        context = engine.create_execution_context()
        if context is None:
            raise RuntimeFailure("TensorRT could not create an execution context on %s "
                                 "(out of device memory?)" % device)
        # Assignment order matters: attributes are released in this order when the object
        # dies, and TensorRT needs context before engine before runtime.
        self._context: Optional["trt.IExecutionContext"] = context
        self._engine = engine
        self._runtime = runtime
        self._zero_copy = cuda.is_integrated()
        self._graphs_wanted = cuda_graphs
        self._graphs_failed = False
        self._states: List[_IOState] = []
        self._inputs, self._outputs = self._specs()

    # ------------------------------------------------------------ description

    def _specs(self) -> Tuple[List[TensorSpec], List[TensorSpec]]:
        import tensorrt as trt

        ins: List[TensorSpec] = []
        outs: List[TensorSpec] = []
        eng = self._engine
        for i in range(eng.num_io_tensors):
            name = eng.get_tensor_name(i)
            dims = eng.get_tensor_shape(name)
            shape = tuple(int(dims[j]) for j in range(len(dims)))
            spec = TensorSpec(name, shape, np.dtype(trt.nptype(eng.get_tensor_dtype(name))))
            (ins if eng.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outs).append(spec)
        return ins, outs

    @property
    def inputs(self) -> List[TensorSpec]:
        return list(self._inputs)

    @property
    def outputs(self) -> List[TensorSpec]:
        return list(self._outputs)

    @property
    def max_batch(self) -> int:
        first = self._inputs[0]
        if first.shape[0] > 0:
            return first.shape[0]
        shapes = self._engine.get_tensor_profile_shape(first.name, 0)  # (min, opt, max)
        return int(shapes[2][0])

    @property
    def _static_batch(self) -> int:
        """The fixed batch of a static-shape engine, 0 for a dynamic batch."""
        first = self._inputs[0].shape
        return first[0] if first and first[0] > 0 else 0

    @property
    def trt_engine(self) -> "trt.ICudaEngine":
        return self._engine

    @property
    def context(self) -> "trt.IExecutionContext":
        if self._context is None:
            raise RuntimeFailure("engine on %s is closed" % self.device)
        return self._context

    def describe(self) -> Dict[str, Any]:
        out = super().describe()
        out.update(self.info)
        out.update(zero_copy=self._zero_copy,
                   cuda_graphs=self._graphs_wanted and not self._graphs_failed)
        return out

    # ------------------------------------------------------------ buffers

    def _shape_at(self, spec: TensorSpec, capacity: int) -> Tuple[int, ...]:
        rest = spec.shape[1:]
        if any(d < 0 for d in rest):
            if spec in self._outputs:  # data-dependent outputs need the batch's shape
                ctx = self.context
                self._set_shapes(capacity)
                dims = ctx.get_tensor_shape(spec.name)
                return tuple(int(dims[j]) for j in range(len(dims)))
            raise RuntimeFailure("input '%s' has dynamic non-batch dimensions %s"
                                 % (spec.name, spec.shape))
        return (capacity,) + tuple(rest)

    def new_io(self, capacity: int) -> EngineIO:
        from edgert import cuda

        if capacity > self.max_batch:
            raise RuntimeFailure("batch %d exceeds the engine's maximum %d (built with batch %d)"
                                 % (capacity, self.max_batch, self.max_batch))
        state = _IOState(cuda.Stream())
        arrays: Dict[str, Dict[str, np.ndarray]] = {"in": {}, "out": {}}
        rows = self._static_batch or capacity  # a static engine always runs its full batch
        for kind, specs in (("in", self._inputs), ("out", self._outputs)):
            for spec in specs:
                shape = self._shape_at(spec, rows)
                host = cuda.HostBuffer(shape, spec.dtype, mapped=self._zero_copy)
                state.host.append(host)
                arrays[kind][spec.name] = host.array
                if self._zero_copy and host.device_ptr is not None:
                    state.addr[spec.name] = int(host.device_ptr)
                else:
                    dev = cuda.DeviceBuffer(host.nbytes)
                    state.device[spec.name] = dev
                    state.addr[spec.name] = int(dev.ptr)
        self._states.append(state)
        extra = {"device_inputs": {s.name: state.addr[s.name] for s in self._inputs},
                 "stream": state.stream, "device_written": set()}
        return EngineIO(capacity=capacity, inputs=arrays["in"], outputs=arrays["out"],
                        handle=state, extra=extra)

    # ------------------------------------------------------------ running

    def _set_shapes(self, n: int) -> None:
        ctx = self.context
        for spec in self._inputs:
            if spec.shape and spec.shape[0] < 0:
                ctx.set_input_shape(spec.name, (n,) + tuple(spec.shape[1:]))

    def _bind(self, state: _IOState) -> None:
        ctx = self.context
        for name, addr in state.addr.items():
            ctx.set_tensor_address(name, addr)

    def _enqueue(self, state: _IOState) -> None:
        if not self.context.execute_async_v3(state.stream.handle):
            raise RuntimeFailure("TensorRT enqueue failed on %s" % self.device)

    def run(self, io: EngineIO, n: int) -> None:
        from edgert import cuda

        state: _IOState = io.handle
        if n < 1 or n > io.capacity:
            raise ValueError("run: n=%d outside 1..%d" % (n, io.capacity))
        rows = self._static_batch or n
        written: Set[str] = io.extra.get("device_written") or set()
        for name, arr in io.inputs.items():
            dev = state.device.get(name)
            if dev is not None and name not in written:
                cuda.memcpy_htod_async(dev.ptr, arr[:rows], state.stream)
                io.bytes_copied += int(arr[:rows].nbytes)
        written.clear()
        self._execute(state, rows)
        for name, arr in io.outputs.items():
            dev = state.device.get(name)
            if dev is not None:
                cuda.memcpy_dtoh_async(arr[:rows], dev.ptr, state.stream)
                io.bytes_copied += int(arr[:rows].nbytes)
        state.stream.synchronize()

    def _execute(self, state: _IOState, rows: int) -> None:
        from edgert import cuda

        graph = state.graphs.get(rows)
        if graph is not None:
            cuda.launch_graph(graph, state.stream)
            return
        self._set_shapes(rows)
        self._bind(state)
        self._enqueue(state)
        if self._graphs_wanted and not self._graphs_failed:
            state.stream.synchronize()  # a normal run after each shape change, then capture
            self._capture(state, rows)

    def _capture(self, state: _IOState, rows: int) -> None:
        from edgert import cuda

        try:
            cuda.begin_capture(state.stream)
        except RuntimeFailure as exc:
            self._graph_fallback(str(exc))
            return
        try:
            self._enqueue(state)
        finally:
            graph = cuda.end_capture(state.stream)
        if graph is None:
            self._graph_fallback("capture failed")
            return
        state.graphs[rows] = graph
        log.info("%s: CUDA graph captured for batch %d", self.device, rows)

    def _graph_fallback(self, why: str) -> None:
        self._graphs_failed = True
        log.warning("%s: CUDA graphs unavailable (%s); enqueueing normally", self.device, why)

    # ------------------------------------------------------------ profiling

    def profile(self, io: EngineIO, n: int, runs: int = 20) -> Dict[str, float]:
        """Mean milliseconds per layer over ``runs`` runs (``IProfiler``, section 5)."""
        import tensorrt as trt

        times: Dict[str, List[float]] = {}

        class Profiler(trt.IProfiler):
            def __init__(self) -> None:
                trt.IProfiler.__init__(self)

            def report_layer_time(self, layer_name: str, ms: float) -> None:
                times.setdefault(layer_name, []).append(ms)

        ctx = self.context
        graphs, self._graphs_wanted = self._graphs_wanted, False  # profile plain enqueues
        ctx.profiler = Profiler()
        try:
            for _ in range(runs):
                self.run(io, n)
        finally:
            self._graphs_wanted = graphs
        return {name: float(np.mean(v)) for name, v in times.items()}

    def close(self) -> None:
        for state in self._states:
            try:
                state.stream.synchronize()
            finally:
                state.free()
        self._states = []
        self._context = None
        # Engine before runtime (the runtime must outlive the engines it deserialized).
        for name in ("_engine", "_runtime"):
            self.__dict__.pop(name, None)
