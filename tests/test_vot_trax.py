"""`lorat vot-server` over the real TraX protocol (vot-trax client, server in a subprocess).

Every server process has a kill timer, so a hung server fails the test instead of hanging CI.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("trax")

from trax import TraxException  # noqa: E402
from trax.client import Client  # noqa: E402
from trax.image import BufferImage, FileImage, MemoryImage  # noqa: E402
from trax.region import Mask, Polygon, Rectangle  # noqa: E402

from modeling_lorat.data.synthetic import make_synthetic_sequence  # noqa: E402
from modeling_lorat.vot.server import LineWriter  # noqa: E402

KILL_AFTER_S = 120
# A TraX client in its own process (the "toolkit"), talking to the server on inherited pipe descriptors.
CLIENT_SCRIPT = """
import sys
from trax.client import Client
from trax.image import FileImage
from trax.region import Rectangle
client = Client(stream=(int(sys.argv[1]), int(sys.argv[2])), log=lambda _: None)
client.initialize({"color": FileImage.create(sys.argv[3])}, [(Rectangle.create(30, 20, 20, 20), {})], {})
print("initialized", flush=True)
sys.stdin.read()
"""


def _kill_timer(proc: subprocess.Popen) -> threading.Timer:
    timer = threading.Timer(KILL_AFTER_S, proc.kill)
    timer.daemon = True
    timer.start()
    return timer


class ServerProcess:
    """``lorat vot-server`` on pipes, killed after ``KILL_AFTER_S`` seconds; ``client`` talks TraX to it."""

    def __init__(self, model: Path, log_path: Path, connect: bool = True) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")
        env = dict(os.environ, OMP_NUM_THREADS="1")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "modeling_lorat.cli",
                "vot-server",
                "--model",
                str(model),
                "--device",
                "cpu",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            bufsize=0,
        )
        self._timer = _kill_timer(self.proc)
        self.client = None
        if not connect:
            return
        try:
            self.client = Client(
                stream=(self.proc.stdin.fileno(), self.proc.stdout.fileno()), log=lambda _: None
            )
        except TraxException as exc:
            self.close()
            raise AssertionError(f"no TraX handshake ({exc}); server stderr:\n{self.stderr}") from None

    def wait(self) -> int:
        """Exit status (the process must end within 30 s)."""
        try:
            return self.proc.wait(timeout=30)
        finally:
            self.close()

    def close(self) -> None:
        self._timer.cancel()
        client, self.client = self.client, None
        if client is not None:
            # end the client's handle while its pipes are open: its finalizer would write to them
            with contextlib.suppress(TraxException):
                client.quit()
            del client
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if not stream.closed:
                stream.close()
        self._log.close()

    @property
    def stderr(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def server(tiny_checkpoint, tmp_path):
    servers = []

    def start(model: Path | None = None, connect: bool = True) -> ServerProcess:
        log_path = tmp_path / f"server{len(servers)}.log"
        servers.append(ServerProcess(model or tiny_checkpoint, log_path, connect=connect))
        return servers[-1]

    yield start
    for process in servers:
        process.close()


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    """4 synthetic 96x72 frames as arrays and lossless PNG paths."""
    folder = tmp_path_factory.mktemp("vot_frames")
    sequence = make_synthetic_sequence(3, num_frames=4, frame_size=(96, 72))
    arrays = [sequence.load_frame(i) for i in range(4)]
    paths = []
    for index, array in enumerate(arrays):
        paths.append(folder / f"{index:08d}.png")
        Image.fromarray(array).save(paths[-1])
    return arrays, paths


def _boxes(objects) -> list[tuple[np.ndarray, dict]]:
    return [(np.array(region.bounds(), dtype=np.float64), properties) for region, properties in objects]


def test_session_polygon_mask_image_kinds_and_quit(server, frames, tiny_checkpoint):
    from modeling_lorat.tracking_lorat import LoratTracker

    arrays, paths = frames
    png = io.BytesIO()
    Image.fromarray(arrays[3]).save(png, format="PNG")
    reference = LoratTracker.from_pretrained(tiny_checkpoint, device="cpu", dtype="float32")
    process = server()
    client = process.client
    assert client.region_formats == ["rectangle"]
    assert set(client.image_formats) == {"path", "memory", "buffer"}

    # a polygon arrives as its bounding rectangle (converted by the TraX library): min/max of the corners
    polygon = [(30.0, 20.0), (55.0, 24.0), (52.0, 50.0), (28.0, 44.0)]
    objects, _ = client.initialize(
        {"color": FileImage.create(str(paths[0]))}, [(Polygon.create(polygon), {})], {}
    )
    [(box, properties)] = _boxes(objects)
    np.testing.assert_allclose(box, [28.0, 20.0, 27.0, 30.0])
    assert float(properties["confidence"]) == 1.0
    reference.init(arrays[0], box)

    inputs = [
        FileImage.create(str(paths[1])),
        MemoryImage.create(arrays[2]),
        BufferImage.create(png.getvalue()),
    ]
    for index, image in enumerate(inputs, start=1):
        objects, _ = client.frame({"color": image}, {}, [])
        [(box, properties)] = _boxes(objects)
        expected = reference.track(arrays[index])
        np.testing.assert_allclose(box, expected.box_xywh, atol=1e-3)  # TraX rectangles are float32
        assert float(properties["confidence"]) == pytest.approx(expected.score, abs=1e-6)
        assert 0.0 <= float(properties["confidence"]) <= 1.0

    # a new initialize restarts tracking; a mask arrives as the bounding box of its pixels
    mask = np.zeros((20, 30), dtype=np.uint8)
    mask[4:16, 6:25] = 1
    objects, _ = client.initialize(
        {"color": FileImage.create(str(paths[0]))}, [(Mask.create(mask, 20, 15), {})], {}
    )
    [(box, _)] = _boxes(objects)
    np.testing.assert_allclose(box, [26.0, 19.0, 19.0, 12.0])
    reference.init(arrays[0], box)
    objects, _ = client.frame({"color": FileImage.create(str(paths[1]))}, {}, [])
    np.testing.assert_allclose(_boxes(objects)[0][0], reference.track(arrays[1]).box_xywh, atol=1e-3)

    client.quit()
    assert process.wait() == 0, process.stderr


def test_region_outside_the_image_is_a_trax_error(server, frames):
    _, paths = frames
    process = server()
    with pytest.raises(
        TraxException, match=r"lorat vot-server: bad initial region: .*outside the 96x72 frame"
    ):
        process.client.initialize(
            {"color": FileImage.create(str(paths[0]))}, [(Rectangle.create(200, 10, 20, 20), {})], {}
        )
    assert process.wait() == 1
    assert "outside the 96x72 frame" in process.stderr


def test_unreadable_frame_is_a_trax_error(server, frames, tmp_path):
    _, paths = frames
    process = server()
    process.client.initialize(
        {"color": FileImage.create(str(paths[0]))}, [(Rectangle.create(30, 20, 20, 20), {})], {}
    )
    missing = tmp_path / "missing.jpg"
    with pytest.raises(TraxException, match=r"cannot read the frame: frame not found: .*missing\.jpg"):
        process.client.frame({"color": FileImage.create(str(missing))}, {}, [])
    assert process.wait() == 1


def test_missing_model_is_a_trax_error(server, frames, tmp_path):
    _, paths = frames
    process = server(tmp_path / "no_such_model")
    with pytest.raises(
        TraxException, match=r"cannot load the model: model folder not found: .*no_such_model"
    ):
        process.client.initialize(
            {"color": FileImage.create(str(paths[0]))}, [(Rectangle.create(30, 20, 20, 20), {})], {}
        )
    assert process.wait() == 1


def test_lost_connection_ends_the_server(server, frames):
    """The toolkit process dies (SIGKILL) mid-session: the server sees the pipe close and exits."""
    _, paths = frames
    process = server(connect=False)
    fds = (process.proc.stdin.fileno(), process.proc.stdout.fileno())  # (to the server, from the server)
    toolkit = subprocess.Popen(
        [sys.executable, "-c", CLIENT_SCRIPT, str(fds[0]), str(fds[1]), str(paths[0])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        pass_fds=fds,
    )
    timer = _kill_timer(toolkit)
    try:
        process.proc.stdin.close()  # only the "toolkit" holds the server's pipes now
        process.proc.stdout.close()
        assert toolkit.stdout.readline() == b"initialized\n", process.stderr
        toolkit.kill()
        toolkit.wait(timeout=30)
        assert process.wait() == 1
    finally:
        timer.cancel()
        if toolkit.poll() is None:
            toolkit.kill()
            toolkit.wait()
        toolkit.stdin.close()
        toolkit.stdout.close()
    assert "connection to the VOT toolkit lost" in process.stderr


def test_line_writer_never_leaves_a_partial_line():
    """Progress-bar style output reaches the shared pipe as whole lines only."""
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb") as pipe:
        try:
            writer = LineWriter(write_fd)
            writer.write("\rLoading:   0%|")
            writer.flush()
            writer.write("\rLoading: 100%|\nwarn")
            writer.write("ing\r\n\n")
            writer.write("tail")
            writer.close()
        finally:
            os.close(write_fd)
        assert pipe.read().decode() == "Loading:   0%|\nLoading: 100%|\nwarning\ntail\n"
