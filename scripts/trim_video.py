"""Cut a segment of a video and re-encode it as H.264 MP4, keeping every frame.

Used by scripts/make_demo_assets.sh for assets/street.mp4 (needs PyAV and
numpy; never run by CI).  Usage:

    python scripts/trim_video.py IN.mp4 OUT.mp4 START_FRAME FRAME_COUNT [CRF]
"""
from __future__ import annotations

import sys
from fractions import Fraction


def trim(src: str, dst: str, start: int, count: int, crf: int = 28) -> int:
    import av

    with av.open(src) as inp:
        vin = inp.streams.video[0]
        rate = vin.average_rate or Fraction(30000, 1001)
        with av.open(dst, mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
            vout = out.add_stream("libx264", rate=rate)
            vout.width, vout.height, vout.pix_fmt = vin.width, vin.height, "yuv420p"
            vout.options = {"crf": str(crf), "preset": "slow"}
            written = 0
            for i, frame in enumerate(inp.decode(vin)):
                if i < start:
                    continue
                if written >= count:
                    break
                img = frame.to_ndarray(format="bgr24")
                for packet in vout.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                    out.mux(packet)
                written += 1
            for packet in vout.encode():
                out.mux(packet)
    return written


if __name__ == "__main__":
    if len(sys.argv) not in (5, 6):
        raise SystemExit(__doc__)
    n = trim(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
             int(sys.argv[5]) if len(sys.argv) == 6 else 28)
    print("wrote %d frames to %s" % (n, sys.argv[2]))
