"""Per-layer device and precision of a built engine, from the engine inspector.

Layers silently falling off DLA is the most common Jetson complaint, so every
build ends with this report.  Sources: the inspector JSON at
``ProfilingVerbosity.DETAILED`` (keys ``Name``, ``LayerType``, ``Inputs``,
``Outputs`` with ``Format/Datatype``, ``TacticValue``/``TacticName``,
``Origin``) and the builder's per-layer placement decisions.

How the device is read (TRT_REFERENCE.md section 1): each DLA subgraph is one
engine layer named ``{ForeignNode[first...last]}``, wrapped by reformat layers
named ``... to nvm`` / ``... from nvm``.  The ``LayerType`` value of DLA nodes
is not documented, so a layer also counts as DLA when its type mentions DLA.
Everything else ran on the GPU.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence

DLA = "dla"
GPU = "gpu"
REFORMAT = "reformat"


@dataclass
class LayerPlacement:
    name: str
    type: str
    device: str  # dla | gpu | reformat
    precision: str  # fp32 | fp16 | int8 | int32 | bool | ?
    tactic: str = ""
    fused: int = 1  # network layers folded into this engine layer (" + " in the name)
    time_ms: Optional[float] = None  # filled by `edgert inspect --profile`


@dataclass
class PlacementReport:
    device: str  # the engine's device: gpu | dla:N
    layers: List[LayerPlacement] = field(default_factory=list)
    network_layers: int = 0  # layers in the parsed network (before fusion)
    fallback_layers: List[str] = field(default_factory=list)  # network layers sent to the GPU

    @property
    def dla_subgraphs(self) -> int:
        return sum(1 for layer in self.layers if layer.device == DLA)

    @property
    def gpu_layers(self) -> int:
        return sum(1 for layer in self.layers if layer.device == GPU)

    @property
    def reformats(self) -> int:
        return sum(1 for layer in self.layers if layer.device == REFORMAT)

    @property
    def gpu_fallback(self) -> int:
        """Network layers of a DLA engine that run on the GPU (0 for GPU engines)."""
        if not self.device.startswith("dla"):
            return 0
        engine_side = sum(layer.fused for layer in self.layers if layer.device == GPU)
        return max(len(self.fallback_layers), engine_side)

    def summary(self) -> str:
        prec = sorted({layer.precision for layer in self.layers if layer.device != REFORMAT})
        text = "%s: %d engine layers from %d network layers" % (
            self.device, len(self.layers), self.network_layers)
        if self.device.startswith("dla"):
            text += "; %d DLA subgraph%s, %d GPU fallback layer%s, %d reformat%s" % (
                self.dla_subgraphs, "" if self.dla_subgraphs == 1 else "s",
                self.gpu_fallback, "" if self.gpu_fallback == 1 else "s",
                self.reformats, "" if self.reformats == 1 else "s")
            if self.fallback_layers:
                shown = ", ".join(self.fallback_layers[:5])
                more = len(self.fallback_layers) - 5
                text += " (%s%s)" % (shown, ", +%d more" % more if more > 0 else "")
        return text + "; precisions: %s" % ("/".join(prec) or "?")

    def to_dict(self) -> Dict[str, Any]:
        return {
            "device": self.device,
            "network_layers": self.network_layers,
            "fallback_layers": list(self.fallback_layers),
            "dla_subgraphs": self.dla_subgraphs,
            "gpu_layers": self.gpu_layers,
            "gpu_fallback": self.gpu_fallback,
            "reformats": self.reformats,
            "layers": [asdict(layer) for layer in self.layers],
        }

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "PlacementReport":
        layers = [LayerPlacement(**item) for item in data.get("layers", [])]
        return cls(device=str(data.get("device", "?")), layers=layers,
                   network_layers=int(data.get("network_layers", 0)),
                   fallback_layers=[str(x) for x in data.get("fallback_layers", [])])


def precision_of(fmt: str) -> str:
    """Precision from an inspector ``Format/Datatype`` string (``"Half format NCHW"``...)."""
    low = fmt.lower()
    if "int8" in low:
        return "int8"
    if "half" in low or "fp16" in low:
        return "fp16"
    if "int32" in low:
        return "int32"
    if "bool" in low:
        return "bool"
    if "fp32" in low or "float" in low or "row major" in low:
        return "fp32"
    return "?"


def _device_of(name: str, layer_type: str) -> str:
    if name.startswith("{ForeignNode[") or "dla" in layer_type.lower():
        return DLA
    low = name.lower()
    if low.endswith(" to nvm") or low.endswith(" from nvm") or layer_type == "Reformat":
        return REFORMAT
    return GPU


def parse_layer(item: Any) -> LayerPlacement:
    """One inspector layer (a dict at DETAILED, a bare name string otherwise)."""
    if isinstance(item, str):
        return LayerPlacement(name=item, type="?", device=_device_of(item, ""), precision="?",
                              fused=len(item.split(" + ")))
    name = str(item.get("Name", "?"))
    ltype = str(item.get("LayerType", "?"))
    outputs = item.get("Outputs") or []
    fmt = str(outputs[0].get("Format/Datatype", "")) if outputs else ""
    tactic = item.get("TacticName") or item.get("TacticValue") or ""
    return LayerPlacement(name=name, type=ltype, device=_device_of(name, ltype),
                          precision=precision_of(fmt), tactic=str(tactic),
                          fused=len(name.split(" + ")))


def parse_inspector(text: str, device: str, network_layers: int = 0,
                    fallback_layers: Sequence[str] = ()) -> PlacementReport:
    """Build the report from ``get_engine_information(LayerInformationFormat.JSON)``."""
    data = json.loads(text) if text.strip() else {}
    items = data.get("Layers", []) if isinstance(data, dict) else data
    layers = [parse_layer(item) for item in items]
    return PlacementReport(device=device, layers=layers, network_layers=network_layers,
                           fallback_layers=list(fallback_layers))


def table(report: PlacementReport, width: int = 56) -> str:
    """A fixed-width table for the terminal; long names are shortened in the middle."""
    timed = any(layer.time_ms is not None for layer in report.layers)
    total = sum(layer.time_ms or 0.0 for layer in report.layers)
    head = "%4s  %-*s  %-14s  %-8s  %-5s" % ("#", width, "layer", "type", "device", "prec")
    if timed:
        head += "  %8s  %5s" % ("ms", "%")
    lines = [head + "  tactic", "-" * (len(head) + 8)]
    for i, layer in enumerate(report.layers):
        line = "%4d  %-*s  %-14s  %-8s  %-5s" % (
            i, width, _shorten(layer.name, width), _shorten(layer.type, 14), layer.device,
            layer.precision)
        if timed:
            ms = layer.time_ms or 0.0
            line += "  %8.3f  %5.1f" % (ms, 100.0 * ms / total if total else 0.0)
        lines.append(line + "  " + _shorten(layer.tactic, 40))
    lines.append(report.summary())
    if timed:
        lines.append("total layer time %.3f ms per inference" % total)
    return "\n".join(lines)


def _shorten(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    keep = width - 3
    return text[: keep // 2] + "..." + text[len(text) - (keep - keep // 2):]
