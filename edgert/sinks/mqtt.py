"""``kind: mqtt``: one JSON message per frame to an MQTT broker (paho-mqtt).

Each message is the frame's jsonl line (:func:`edgert.sinks.jsonl.frame_records`),
so consumers parse files and messages alike.

Built for brokers that restart and networks that drop:

* ``write()`` never blocks inference: it serialises the frame's record and
  appends it to a bounded in-memory buffer.  One background thread owns the
  paho client: it connects, reconnects with exponential backoff and jitter,
  and drains the buffer while connected.
* While the broker is away the buffer holds up to ``buffer_size`` messages;
  when full the *oldest* are dropped (fresh detections matter more) and
  counted.
* Every message ends counted exactly once: ``acked`` (QoS 1: the broker sent
  PUBACK; QoS 0: written to the socket) or ``dropped`` (buffer full, or still
  undelivered when the sink stopped).  So ``acked + dropped == messages``.

YAML::

    - kind: mqtt
      input: det
      host: broker.local
      topic: "edgert/{source}/detections"
      qos: 1
      only_detections: true
      username: edge
      password: ${MQTT_PASSWORD}
      tls: {ca_certs: certs/ca.pem}
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from pathlib import Path
from string import Formatter
from typing import Any, Deque, Dict, Optional, Set, Tuple

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edgert.batch import Batch
from edgert.sinks.jsonl import frame_records
from edgert.sources.live import backoff_delays
from edgert.stage import SINKS, Sink, SinkConfig, StageContext

log = logging.getLogger("edgert.sinks.mqtt")


class MqttTls(BaseModel):
    """TLS to the broker: ``{ca_certs: ca.pem, certfile: client.crt, keyfile: client.key}``."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    ca_certs: Optional[Path] = None
    """CA bundle that signed the broker's certificate (default: the system's)."""
    certfile: Optional[Path] = None
    """Client certificate, for brokers that authenticate clients by certificate."""
    keyfile: Optional[Path] = None
    """The client certificate's private key."""
    insecure: bool = False
    """Skip the broker host-name check (self-signed test brokers only)."""


class MqttConfig(SinkConfig):
    host: str = "localhost"
    """Broker host name or address."""
    port: int = Field(1883, ge=1, le=65535)
    """Broker port (8883 is the usual TLS port)."""
    topic: str = "edgert/{source}/detections"
    """Topic per message; ``{source}`` is replaced by the stream name."""
    qos: int = 0
    """0: at most once (fast); 1: at least once (acknowledged by the broker)."""
    retain: bool = False
    """Ask the broker to keep the last message per topic for new subscribers."""
    only_detections: bool = False
    """Publish only frames that have at least one detection."""
    client_id: Optional[str] = None
    """MQTT client id (default: random, chosen by the client library)."""
    username: Optional[str] = None
    """User name for brokers with password authentication."""
    password: Optional[str] = None
    """Password; write ``${MQTT_PASSWORD}`` to take it from the environment."""
    tls: Optional[MqttTls] = None
    """Connect over TLS with these certificates; ``tls: {}`` uses the system CAs."""
    keepalive_s: int = Field(30, ge=5)
    """Ping interval; a dead connection is noticed within about 1.5x this."""
    buffer_size: int = Field(10000, ge=1)
    """Messages held while the broker is unreachable; the oldest are dropped beyond."""
    reconnect_initial_s: float = Field(0.5, gt=0)
    """First wait before reconnecting; doubles after each failure."""
    reconnect_max_s: float = Field(30.0, gt=0)
    """Longest wait between reconnect attempts."""
    reconnect_jitter: float = Field(0.2, ge=0, le=1)
    """Random fraction added to each wait."""
    flush_timeout_s: float = Field(5.0, ge=0)
    """At stop, how long to wait for buffered and unacknowledged messages."""

    @field_validator("qos")
    @classmethod
    def _qos(cls, v: int) -> int:
        if v not in (0, 1):
            raise ValueError("qos must be 0 or 1, got %d" % v)
        return v

    @field_validator("topic")
    @classmethod
    def _topic(cls, v: str) -> str:
        try:
            fields = {f for _, f, _, _ in Formatter().parse(v) if f is not None}
        except ValueError as exc:
            raise ValueError("bad topic template '%s': %s" % (v, exc)) from None
        unknown = fields - {"source"}
        if unknown:
            raise ValueError("topic may only use {source}; unknown: %s"
                             % ", ".join("{%s}" % f for f in sorted(unknown)))
        if "#" in v or "+" in v:
            raise ValueError("topic '%s' contains a wildcard (# or +)" % v)
        return v

    @model_validator(mode="after")
    def _checks(self) -> "MqttConfig":
        if self.password is not None and self.username is None:
            raise ValueError("password is set but username is not")
        if self.reconnect_max_s < self.reconnect_initial_s:
            raise ValueError("reconnect_max_s must be >= reconnect_initial_s")
        return self


@SINKS.register("mqtt")
class MqttSink(Sink):
    Config = MqttConfig

    def __init__(self, config: SinkConfig, context: StageContext) -> None:
        super().__init__(config, context)
        self.cfg: MqttConfig = config  # type: ignore[assignment]
        self._lock = threading.Lock()
        self._buffer: Deque[Tuple[str, bytes]] = deque()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._client: Any = None
        self._connected = False
        self._inflight: Dict[int, bool] = {}
        self._early_acks: Set[int] = set()
        self.counts = {"messages": 0, "published": 0, "acked": 0, "dropped": 0,
                       "reconnects": 0}
        self._full_logged = False

    @property
    def where(self) -> str:
        return "%s:%d" % (self.cfg.host, self.cfg.port)

    def start(self) -> None:
        from edgert._lazy import require

        mqtt = require("paho.mqtt.client", "the mqtt sink")
        self._client = self._make_client(mqtt)
        self._thread = threading.Thread(target=self._run, name="edgert-mqtt-%s" % self.name,
                                        daemon=True)
        self._thread.start()

    def write(self, batch: Batch) -> None:
        msgs = [(self.cfg.topic.format(source=r["source"]),
                 json.dumps(r, separators=(",", ":")).encode())
                for r in frame_records(batch)
                if r["detections"] or not self.cfg.only_detections]
        if not msgs:
            return
        dropped = 0
        with self._lock:
            for m in msgs:
                if len(self._buffer) >= self.cfg.buffer_size:
                    self._buffer.popleft()
                    dropped += 1
                self._buffer.append(m)
            self.counts["messages"] += len(msgs)
        if dropped:
            self._count_dropped(dropped, "buffer of %d messages full" % self.cfg.buffer_size)

    def flush(self) -> None:
        """Nothing to force: the client thread publishes buffered messages within
        about 50 ms while connected; waiting here would block on an absent broker."""

    def _drain(self) -> None:
        """At stop: wait up to ``flush_timeout_s`` until every message is acknowledged."""
        end = time.monotonic() + self.cfg.flush_timeout_s
        while time.monotonic() < end and self._pending() and self._thread is not None \
                and self._thread.is_alive():
            time.sleep(0.02)

    def stop(self) -> None:
        self._drain()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        left = self._pending()
        if left:
            self._count_dropped(left, "undelivered at stop")
        with self._lock:
            self._buffer.clear()
            self._inflight.clear()
        log.info("mqtt sink '%s': %d messages, %d acknowledged, %d dropped, %d reconnects",
                 self.name, self.counts["messages"], self.counts["acked"],
                 self.counts["dropped"], self.counts["reconnects"])

    def stats(self) -> Dict[str, Any]:
        with self._lock:
            return dict(self.counts, buffered=len(self._buffer), connected=self._connected)

    # -- the client thread ------------------------------------------------
    def _make_client(self, mqtt: Any) -> Any:
        cfg = self.cfg
        kwargs: Dict[str, Any] = {"client_id": cfg.client_id or ""}
        if hasattr(mqtt, "CallbackAPIVersion"):  # paho-mqtt >= 2
            kwargs["callback_api_version"] = mqtt.CallbackAPIVersion.VERSION2
        client = mqtt.Client(**kwargs)
        if cfg.username is not None:
            client.username_pw_set(cfg.username, cfg.password)
        if cfg.tls is not None:
            base = self.context.base_dir
            paths = [None if p is None else str(p if p.is_absolute() else base / p)
                     for p in (cfg.tls.ca_certs, cfg.tls.certfile, cfg.tls.keyfile)]
            client.tls_set(ca_certs=paths[0], certfile=paths[1], keyfile=paths[2])
            client.tls_insecure_set(cfg.tls.insecure)
        if hasattr(client, "connect_timeout"):
            client.connect_timeout = 5.0
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    def _run(self) -> None:
        first = True
        while not self._stop.is_set():
            if not self._connect(first):
                continue
            first = False
            self._serve()
        try:
            self._client.disconnect()
        except Exception:  # noqa: BLE001 - already gone
            pass

    def _connect(self, first: bool) -> bool:
        """(Re)connect with backoff; True once the broker accepted us."""
        down_since = time.monotonic()
        logged = False
        delays = backoff_delays(self.cfg.reconnect_initial_s, self.cfg.reconnect_max_s,
                                self.cfg.reconnect_jitter)
        while not self._stop.is_set():
            error = self._try_connect(first)
            if error is None:
                if not first:
                    self.counts["reconnects"] += 1
                    self._metric_inc("edgert_sink_reconnects_total")
                    log.info("mqtt sink '%s': reconnected to %s after %.1f s", self.name,
                             self.where, time.monotonic() - down_since)
                else:
                    log.info("mqtt sink '%s': connected to %s", self.name, self.where)
                self._full_logged = False
                return True
            if not logged:
                log.warning("mqtt sink '%s': broker %s unreachable (%s); buffering up to %d "
                            "messages and retrying", self.name, self.where, error,
                            self.cfg.buffer_size)
                logged = True
            self._stop.wait(next(delays))
        return False

    def _try_connect(self, first: bool) -> Optional[str]:
        """One attempt, waiting for the broker's CONNACK; an error text or None."""
        self._connack: Optional[int] = None
        try:
            if first and not getattr(self, "_ever_connected", False):
                self._client.connect(self.cfg.host, self.cfg.port, self.cfg.keepalive_s)
            else:
                self._client.reconnect()  # keeps unacknowledged QoS 1 messages for resend
        except (OSError, ValueError) as exc:
            return " ".join(str(exc).split()) or type(exc).__name__
        self._ever_connected = True
        end = time.monotonic() + 10.0
        while self._connack is None and time.monotonic() < end and not self._stop.is_set():
            if self._client.loop(timeout=0.1) != 0:
                return "connection closed before the broker answered"
        if self._connack is None:
            return "no answer from the broker"
        if self._connack != 0:
            return "broker refused the connection (reason %d)" % self._connack
        return None

    def _serve(self) -> None:
        """Publish buffered messages and run the network loop until disconnected."""
        mqtt_ok = 0
        while not self._stop.is_set() and self._connected:
            self._publish_some(mqtt_ok)
            if self._client.loop(timeout=0.05) != mqtt_ok:
                break
        if not self._stop.is_set():
            log.warning("mqtt sink '%s': connection to %s lost; buffering up to %d messages",
                        self.name, self.where, self.cfg.buffer_size)
        self._set_connected(False)

    def _publish_some(self, ok: int, limit: int = 100) -> None:
        for _ in range(limit):
            with self._lock:
                if not self._buffer or len(self._inflight) >= 100:
                    return
                topic, payload = self._buffer.popleft()
            info = self._client.publish(topic, payload, qos=self.cfg.qos, retain=self.cfg.retain)
            if info.rc != ok and self.cfg.qos == 0:
                with self._lock:  # not sent: keep it for the next connection
                    self._buffer.appendleft((topic, payload))
                return
            with self._lock:  # QoS 1: paho holds it and resends after a reconnect
                self.counts["published"] += 1
                early = info.mid in self._early_acks
                if early:  # QoS 0 may be written (and reported) inside publish()
                    self._early_acks.discard(info.mid)
                    self.counts["acked"] += 1
                else:
                    self._inflight[info.mid] = True
            self._metric_inc("edgert_sink_published_total")
            if early:
                self._metric_inc("edgert_sink_acked_total")

    # -- paho callbacks (run in the client thread) -------------------------
    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, *rest: Any) -> None:
        self._connack = int(getattr(rc, "value", rc))
        self._set_connected(self._connack == 0)

    def _on_disconnect(self, client: Any, *args: Any) -> None:
        self._set_connected(False)

    def _on_publish(self, client: Any, userdata: Any, mid: int, *rest: Any) -> None:
        with self._lock:
            if self._inflight.pop(mid, None) is None:
                self._early_acks.add(mid)
                return
            self.counts["acked"] += 1
        self._metric_inc("edgert_sink_acked_total")

    # -- bookkeeping --------------------------------------------------------
    def _pending(self) -> int:
        with self._lock:
            return len(self._buffer) + len(self._inflight)

    def _set_connected(self, up: bool) -> None:
        self._connected = up
        if self.metrics is not None:
            self.metrics.set("edgert_sink_connected", 1.0 if up else 0.0, sink=self.name)

    def _count_dropped(self, n: int, why: str) -> None:
        with self._lock:
            self.counts["dropped"] += n
        self._metric_inc("edgert_sink_dropped_total", n)
        if not self._full_logged:
            self._full_logged = True
            log.warning("mqtt sink '%s': dropping messages (%s); counted in "
                        "edgert_sink_dropped_total", self.name, why)

    def _metric_inc(self, name: str, n: float = 1.0) -> None:
        if self.metrics is not None:
            self.metrics.inc(name, float(n), sink=self.name)
