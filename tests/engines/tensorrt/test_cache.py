"""Engine cache: key covers every input, readable names, verify, atomic writes, the build lock."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Callable, Dict

import pytest

from edgert.config.schema import LayerOverride, ModelConfig
from edgert.engines.tensorrt import cache as ecache
from edgert.engines.tensorrt.compat import Features
from edgert.engines.tensorrt.manager import key_inputs

FEATS = Features(version="8.5.2", explicit_batch_flag=True, strongly_typed=False,
                 precision_flags=True, implicit_int8=True, sparse_weights=True, memory_pools=True,
                 dla_pools=True, named_io=True, progress_monitor=False, dla_api=True,
                 dla_release=True, dla_explicit_quant=False)
FACTS = {"gpu": "Xavier", "compute_capability": "7.2", "integrated": True, "l4t": "35.3.1"}


def _setup(tmp_path: Path) -> Dict[str, Any]:
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"model-v1")
    calib = tmp_path / "m.calib"
    calib.write_bytes(b"TRT-8502-EntropyCalibration2\nimages: 3c008912\n")
    model = ModelConfig(onnx=onnx, precision="int8",
                        int8={"calibration": {"images": str(tmp_path), "cache": str(calib)}})
    return {"model": model, "device": "dla:0", "feats": FEATS, "facts": dict(FACTS),
            "onnx": onnx, "calib": calib}


def _key(s: Dict[str, Any]) -> str:
    return ecache.compute_key(key_inputs("det", s["model"], s["device"], s["feats"], s["facts"]))


Mutation = Callable[[Dict[str, Any]], None]
MUTATIONS: Dict[str, Mutation] = {
    "onnx bytes": lambda s: s["onnx"].write_bytes(b"model-v2"),
    "device/DLA core": lambda s: s.update(device="dla:1"),
    "device gpu": lambda s: s.update(device="gpu"),
    "precision": lambda s: setattr(s["model"], "precision", "fp16"),
    "gpu_fallback": lambda s: setattr(s["model"], "gpu_fallback", False),
    "sparsity": lambda s: setattr(s["model"], "sparsity", True),
    "batch": lambda s: setattr(s["model"], "batch", 4),
    "workspace": lambda s: setattr(s["model"].build, "workspace_mb", 512),
    "dla sram": lambda s: setattr(s["model"].build, "dla_sram_kb", 256),
    "dla local dram": lambda s: setattr(s["model"].build, "dla_local_dram_mb", 64),
    "dla global dram": lambda s: setattr(s["model"].build, "dla_global_dram_mb", 64),
    "layer overrides": lambda s: setattr(s["model"].build, "layers",
                                         [LayerOverride(match="*", device="gpu")]),
    "calibration cache bytes": lambda s: s["calib"].write_bytes(
        b"TRT-8502-EntropyCalibration2\nimages: 3c008913\n"),
    "calibration method": lambda s: setattr(s["model"].int8.calibration, "method", "minmax"),
    "tensorrt version": lambda s: s.update(feats=Features(**dict(FEATS.to_dict(),
                                                                 version="8.5.3"))),
    "gpu name": lambda s: s["facts"].update(gpu="Orin"),
    "compute capability": lambda s: s["facts"].update(compute_capability="8.7"),
    "l4t release": lambda s: s["facts"].update(l4t="35.4.1"),
}


@pytest.mark.parametrize("what", sorted(MUTATIONS))
def test_key_changes_when_any_input_changes(tmp_path: Path, what: str) -> None:
    s = _setup(tmp_path)
    before = _key(s)
    assert _key(s) == before  # deterministic
    MUTATIONS[what](s)
    assert _key(s) != before, what


@pytest.mark.parametrize("what", ["cuda_graphs", "cache_dir", "timing_cache", "max_gpu_fallback"])
def test_runtime_only_options_keep_the_key(tmp_path: Path, what: str) -> None:
    s = _setup(tmp_path)
    before = _key(s)
    value = {"cuda_graphs": True, "cache_dir": tmp_path, "timing_cache": tmp_path / "t",
             "max_gpu_fallback": 3}[what]
    setattr(s["model"].build, what, value)
    assert _key(s) == before


def test_readable_file_names(tmp_path: Path) -> None:
    e = ecache.entry_for(tmp_path, "detector", "dla:0", "int8", 4, "ab" * 32)
    assert e.engine.name == "detector-dla0-int8-b4-abababababab.engine"
    assert e.sidecar.name == "detector-dla0-int8-b4-abababababab.json"


def test_store_then_verify_and_detect_corruption(tmp_path: Path) -> None:
    e = ecache.entry_for(tmp_path, "m", "gpu", "fp16", 1, "k" * 64)
    assert ecache.verify(e) == "not built"
    meta = ecache.store(e, b"\x01" * 1000, {"build_seconds": 1.5})
    assert ecache.verify(e) is None and meta["size"] == 1000
    assert ecache.read_sidecar(e.sidecar)["build_seconds"] == 1.5
    data = bytearray(e.engine.read_bytes())
    data[10] ^= 0xFF
    e.engine.write_bytes(bytes(data))
    assert "sha256 differs" in str(ecache.verify(e))
    e.sidecar.unlink()
    assert "sidecar missing" in str(ecache.verify(e))


KILLED_WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from edgert.engines.tensorrt import cache as ecache

    def slow(f, data):
        f.write(data[: len(data) // 2])
        f.flush()
        print("half", flush=True)
        time.sleep(60)

    ecache._write_chunks = slow
    e = ecache.entry_for(Path(sys.argv[1]), "m", "gpu", "fp16", 1, "k" * 64)
    ecache.store(e, b"\\x02" * 4096, {})
""")


def test_atomic_write_survives_sigkill_mid_write(tmp_path: Path) -> None:
    e = ecache.entry_for(tmp_path, "m", "gpu", "fp16", 1, "k" * 64)
    ecache.store(e, b"\x01" * 4096, {"generation": 1})  # a good engine already there
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "half"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert e.engine.read_bytes() == b"\x01" * 4096  # the old engine is intact, never half-new
    assert ecache.verify(e) == "sidecar missing or unreadable (an interrupted build?)"
    leftovers = list(tmp_path.glob(".*.tmp"))
    assert len(leftovers) == 1
    os.utime(leftovers[0], (0, 0))  # pretend it is old
    assert ecache.clean_temp_files(tmp_path) == 1


LOCKED_BUILDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from edgert.engines.tensorrt import cache as ecache

    root, me, peer_flag = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    e = ecache.entry_for(root, "m", "gpu", "fp16", 1, "k" * 64)
    (root / ("started-" + me)).touch()
    with ecache.build_lock(e, timeout_s=60):
        if ecache.verify(e) is None:
            print("cached", flush=True)
        else:
            with open(root / "builds.log", "a") as log:
                log.write(me + "\\n")
            deadline = time.time() + 30
            while not peer_flag.exists() and time.time() < deadline:
                time.sleep(0.05)  # hold the lock until the peer is waiting on it
            time.sleep(0.3)
            ecache.store(e, b"engine", {"by": me})
            print("built", flush=True)
""")


def test_lock_prevents_a_concurrent_double_build(tmp_path: Path) -> None:
    a = subprocess.Popen([sys.executable, "-c", LOCKED_BUILDER, str(tmp_path), "a",
                          str(tmp_path / "started-b")], stdout=subprocess.PIPE, text=True)
    while not (tmp_path / "builds.log").exists():
        assert a.poll() is None, "builder a exited early"
        time.sleep(0.05)
    b = subprocess.Popen([sys.executable, "-c", LOCKED_BUILDER, str(tmp_path), "b",
                          str(tmp_path / "never")], stdout=subprocess.PIPE, text=True)
    out_a, _ = a.communicate(timeout=60)
    out_b, _ = b.communicate(timeout=60)
    assert (tmp_path / "builds.log").read_text() == "a\n"  # exactly one build
    assert out_a.strip() == "built" and out_b.strip() == "cached"
