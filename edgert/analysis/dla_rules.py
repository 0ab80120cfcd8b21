"""DLA rule vocabulary: platforms, verdicts and the helpers the rule functions share.

The ground truth is /work/shared/TRT_REFERENCE.md section 2: the DLA notes in
TensorRT 8.5.2's ``NvInfer.h`` (Xavier, JetPack 5) and 10.3's (Orin, JetPack
6), the TRT 8.4 developer guide (G84) and the current online docs (L).  Every
rejection names the rule, the offending value and, where there is one, the
usual fix.  Where the reference marks a rule UNCONFIRMED the verdict says so
(``unconfirmed=True`` and the word UNCONFIRMED in the reason): we predict, we
do not pretend to know.

The rule functions themselves (one per ONNX op family) and the op -> rule
table live in :mod:`edgert.analysis.dla_ops`; general limits (dims, dtype,
dynamic shapes, batch) are checked for every node in
:func:`edgert.analysis.dla_check.check_node`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from edgert.analysis.onnx_graph import GraphView

DLA, GPU, FOLDED = "dla", "gpu", "folded"


@dataclass(frozen=True)
class Platform:
    """What differs between Xavier (DLA v1, TRT 8.5.2) and Orin (DLA v2, TRT 10.3)."""

    name: str
    trt: str
    source: str
    softmax: bool
    reduce_max_confirmed: bool
    avgpool_exclusive_padding: bool
    sub_emulated: bool


PLATFORMS: Dict[str, Platform] = {
    "xavier": Platform("xavier", "8.5.2", "TRT 8.5.2 NvInfer.h", softmax=False,
                       reduce_max_confirmed=False, avgpool_exclusive_padding=False,
                       sub_emulated=True),
    "orin": Platform("orin", "10.3", "TRT 10.3 NvInfer.h", softmax=True,
                     reduce_max_confirmed=True, avgpool_exclusive_padding=True,
                     sub_emulated=False),
}

MAX_DIM = 8192
MAX_BATCH = 4096


@dataclass
class Violation:
    rule: str
    detail: str
    fix: str = ""
    unconfirmed: bool = False

    def text(self) -> str:
        s = "%s: %s" % (self.rule, self.detail)
        if self.unconfirmed:
            s += " [UNCONFIRMED in TRT_REFERENCE; verify with config.can_run_on_DLA(layer)]"
        return s


@dataclass
class Verdict:
    """Where a node is predicted to run and why."""

    device: str
    violations: List[Violation] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    unconfirmed: bool = False
    passthrough: bool = False

    @property
    def rule(self) -> str:
        return self.violations[0].rule if self.violations else ""

    @property
    def fix(self) -> str:
        return "; ".join(v.fix for v in self.violations if v.fix)

    @property
    def reason(self) -> str:
        parts = [v.text() for v in self.violations] + list(self.notes)
        fix = self.fix
        text = "; ".join(parts)
        return text + ("; usual fix: " + fix if fix else "")


@dataclass
class RuleContext:
    g: GraphView
    platform: Platform
    precision: str  # fp16 | int8
    fold_pads: bool = False  # assume TensorRT folds a zero Pad into the next Conv

    @property
    def int8(self) -> bool:
        return self.precision == "int8"


def gpu(rule: str, detail: str, fix: str = "", unconfirmed: bool = False) -> Verdict:
    return Verdict(GPU, [Violation(rule, detail, fix, unconfirmed)], unconfirmed=unconfirmed)


def dla(*notes: str, unconfirmed: bool = False) -> Verdict:
    return Verdict(DLA, notes=[n for n in notes if n], unconfirmed=unconfirmed)


def collect(violations: List[Violation], notes: Sequence[str] = ()) -> Verdict:
    if violations:
        return Verdict(GPU, violations, list(notes),
                       unconfirmed=any(v.unconfirmed for v in violations))
    return Verdict(DLA, notes=[n for n in notes if n])


def in_range(vs: List[Violation], rule: str, what: str, values: Sequence[int], lo: int, hi: int,
             fix: str = "") -> None:
    """Append a violation naming the values when any lies outside [lo, hi]."""
    bad = [v for v in values if v < lo or v > hi]
    if bad:
        vs.append(Violation(rule, "%s %s outside [%d,%d]" % (what, list(values), lo, hi), fix))


def const_list(c: RuleContext, node: Any, index: int) -> Optional[List[float]]:
    if len(node.input) <= index or not node.input[index]:
        return None
    val = c.g.value(node.input[index])
    return None if val is None else [float(x) for x in val.reshape(-1)]


