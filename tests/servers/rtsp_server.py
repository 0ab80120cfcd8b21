"""A real RTSP server for tests: GStreamer's RTSP server library (gst-rtsp-server).

Run with Debian's /usr/bin/python3 (python3-gi, gir1.2-gst-rtsp-server-1.0,
gstreamer1.0-plugins-ugly for x264enc), not the venv:

    /usr/bin/python3 tests/servers/rtsp_server.py PORT [WIDTHxHEIGHT] [FPS]

Serves rtsp://127.0.0.1:PORT/test as live H.264 from videotestsrc, prints
"READY" once listening, and runs until killed.
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    port = sys.argv[1]
    width, height = (sys.argv[2] if len(sys.argv) > 2 else "160x120").split("x")
    fps = sys.argv[3] if len(sys.argv) > 3 else "15"
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=%s,height=%s,framerate=%s/1"
        " ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=%s bitrate=300"
        " ! rtph264pay name=pay0 pt=96 config-interval=1 )" % (width, height, fps, fps)
    )
    factory.set_shared(True)
    server.get_mount_points().add_factory("/test", factory)
    if server.attach(None) == 0:
        print("cannot listen on port %s" % port, flush=True)
        sys.exit(1)
    print("READY", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
