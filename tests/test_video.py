"""MP4 output: decodes with the frame count, order and padded size expected; poster; speeding-up schedules."""

from pathlib import Path

import imageio.v2 as imageio
import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from reportgen.video import accelerating_durations, frame_repeats, pad_frame, write_mp4

COLORS = [(230, 20, 20), (20, 230, 20), (20, 20, 230), (240, 240, 240), (128, 128, 0)]


def _frames(height: int = 20, width: int = 30) -> list[np.ndarray]:
    return [np.full((height, width, 3), color, np.uint8) for color in COLORS]


def _decode(path: Path) -> list[np.ndarray]:
    with imageio.get_reader(path, format="FFMPEG") as reader:
        return [np.asarray(frame) for frame in reader]


def test_durations_become_repeated_frames_in_the_order_given(tmp_path: Path) -> None:
    durations = [0.2, 0.04, 0.04, 0.12, 0.01]
    info = write_mp4(_frames(), tmp_path / "m.mp4", durations, tmp_path / "m.png", fps=25)
    repeats = frame_repeats(durations, 25)
    assert repeats.tolist() == [5, 1, 1, 3, 1]  # the last is shorter than a tick and still shown once
    decoded = _decode(tmp_path / "m.mp4")
    assert info.frames == len(decoded) == 11 and info.inputs == 5 and info.size == (32, 32)
    assert decoded[0].shape == (32, 32, 3)  # 30x20 padded, not rescaled, to multiples of 16
    centres = [tuple(int(v) for v in frame[16, 16]) for frame in decoded]
    expected = [color for color, n in zip(COLORS, repeats, strict=True) for _ in range(n)]
    assert all(np.abs(np.subtract(got, want)).max() <= 12 for got, want in zip(centres, expected, strict=True))
    # 6 black pad rows above the picture, 6 below (chroma subsampling blurs the border a little)
    assert decoded[0][:4].max() <= 24 and np.abs(decoded[0][7, 16].astype(int) - COLORS[0]).max() <= 12
    poster = np.asarray(Image.open(tmp_path / "m.png"))
    assert poster.shape == (32, 32, 3) and tuple(poster[16, 16]) == COLORS[0] and tuple(poster[0, 0]) == (0, 0, 0)


def test_constant_rate_h264_yuv420p_with_the_index_first(tmp_path: Path) -> None:
    gray = [np.full((16, 48), 40 * i, np.uint8) for i in range(4)]
    info = write_mp4(gray, tmp_path / "g.mp4", 10.0, tmp_path / "g.png")
    reader = imageio_ffmpeg.read_frames(str(tmp_path / "g.mp4"))
    meta = next(reader)
    count = sum(1 for _ in reader)
    assert count == info.frames == 4 and meta["size"] == (48, 16) and meta["fps"] == pytest.approx(10)
    assert meta["codec"].startswith("h264") and meta["pix_fmt"].startswith("yuv420p")
    data = (tmp_path / "g.mp4").read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # +faststart: playable before the download ends
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.mp4", "g.png"]  # no temporary files left


def test_mismatched_frames_fail_plainly_and_leave_no_movie(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="5 frames for 6 durations"):
        write_mp4(_frames(), tmp_path / "a.mp4", [0.1] * 6, tmp_path / "a.png")
    with pytest.raises(ValueError, match="frame 1 is 40x20"):
        write_mp4([np.zeros((20, 30, 3), np.uint8), np.zeros((20, 40, 3), np.uint8)], tmp_path / "b.mp4", 5,
                  tmp_path / "b.png")
    assert not (tmp_path / "a.mp4").exists() and not (tmp_path / "b.mp4").exists()


def test_schedules_speed_up_and_padding_centres() -> None:
    durations = accelerating_durations(50, first=0.8, last=0.08)
    assert durations[0] == pytest.approx(0.8) and durations[-1] == pytest.approx(0.08)
    assert all(a > b for a, b in zip(durations, durations[1:], strict=False))
    repeats = frame_repeats(durations, 25)
    assert repeats[0] == 20 and repeats[-1] == 2 and repeats.sum() == round(sum(durations) * 25)
    padded = pad_frame(np.full((17, 16, 1), 9, np.uint8), color=(1, 2, 3))
    assert padded.shape == (32, 16, 3) and (padded[6] == (1, 2, 3)).all() and (padded[7] == 9).all()


def test_frame_cells_follow_per_layer_ranges_and_wrap() -> None:
    from reportgen.frames import BACKGROUND, BAR, BAR_TRUE, ResponseMovie, hot_colormap

    movie = ResponseMovie([("conv1", 5), ("fc$6$", 70)], ["a", "b"], (4, 4, 1), np.array([[0, 2], [-1, 1]]),
                          cell=5, gap=2, columns=64, image_side=16)
    assert movie.size[0] % 16 == 0 and movie.size[1] % 16 == 0
    values = np.concatenate([[0, 1, 2, 4, -3], np.linspace(-1, 1, 70)]).astype(np.float32)
    image = np.arange(16, dtype=np.uint8).reshape(4, 4, 1) * 16
    frame = movie.frame(image, np.array([0.25, 0.75]), values, label=0)
    lut = hot_colormap()

    def colour(layer: int, unit: int, dy: int = 0, dx: int = 0) -> tuple[int, ...]:
        y, x = movie.cell_at(layer, unit)
        return tuple(int(v) for v in frame[y + dy, x + dx])

    assert colour(0, 0) == tuple(lut[0]) and colour(0, 2) == colour(0, 3) == tuple(lut[255])
    assert colour(0, 1) == tuple(lut[127]) and colour(0, 4, 4, 4) == tuple(lut[0])  # below the range: black
    assert colour(1, 69) == tuple(lut[255]) and movie.cell_at(1, 69)[0] > movie.cell_at(1, 63)[0]  # wrapped
    assert movie.cell_at(1, 64) == (movie.cell_at(1, 0)[0] + 7, movie.cell_at(1, 0)[1])
    assert colour(0, 0, 5, 5) == BACKGROUND and colour(1, 64, 0, 6) == BACKGROUND  # gaps stay background
    y, x = movie.image_at  # the input scaled up 4x, pixel by pixel
    assert (frame[y:y + 4, x:x + 4] == 0).all() and (frame[y + 12:y + 16, x + 12:x + 16] == 240).all()
    first, second = movie.bar_rows
    assert (frame[first + 2, movie.bar_x:movie.bar_x + 22] == BAR_TRUE).all()  # 25% of 90 px, the true class
    assert (frame[second + 2, movie.bar_x:movie.bar_x + 67] == BAR).all()


def test_hostile_names_are_drawn_literally_on_one_line() -> None:
    from reportgen.frames import fit, printable, text_sprite

    assert printable("a\nb\t$x$\u202e") == "a\\nb\\t$x$\\u202e"
    long = fit("$\\frac{1}{2}$ " * 20, 80)
    assert long.startswith("$\\frac{1}{2}$") and long.endswith("…")
    sprite = text_sprite("$\\frac{1}{2}$ <script>", 80, 13)
    assert sprite.shape == (13, 80, 3) and (sprite != sprite[0, 0]).any()


def test_response_frames_follow_the_kept_order_and_encode(tmp_path: Path) -> None:
    import torch

    from reportgen.frames import response_frames
    from reportgen.models import create_model
    from reportgen.responses import record_responses

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: two spinning threads on a shared 2-core machine are far slower
    try:
        model = create_model("model1", in_channels=1, image_size=16, num_classes=3, width=0.125)
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (6, 16, 16, 1), dtype=np.uint8)
        rec = record_responses(model, images, np.array([0, 1, 2, 0, 1, 2]), [0.5], [0.25], class_names=["x", "y", "z"],
                               keep=[4, 1, 5], batch_size=6)
    finally:
        torch.set_num_threads(threads)
    movie, frames = response_frames(rec, images, title="Model I")
    frames = list(frames)
    y, x = movie.image_at
    s = movie.scale_by
    for frame, index in zip(frames, [4, 1, 5], strict=True):
        assert (frame[y:y + 16 * s:s, x:x + 16 * s:s, 0] == images[index, :, :, 0]).all()
    info = write_mp4(frames, tmp_path / "r.mp4", accelerating_durations(3, 0.2, 0.04), tmp_path / "r.png")
    assert len(_decode(tmp_path / "r.mp4")) == info.frames == 5 + 2 + 1  # 0.2 s, 0.09 s, 0.04 s at 25 fps
    assert info.size == movie.size


def test_many_classes_show_the_most_probable_bars_first() -> None:
    from reportgen.frames import BAR, BAR_TRACK, ResponseMovie

    movie = ResponseMovie([("fc", 3)], [f"c{i}" for i in range(30)], (8, 8, 3), np.array([[0, 1]]), max_bars=5)
    probs = np.full(30, 0.5 / 28)
    probs[[7, 19]] = 0.3, 0.2
    frame = movie.frame(np.zeros((8, 8, 3), np.uint8), probs, np.zeros(3, np.float32))
    assert len(movie.bar_rows) == 5
    lengths = [int((frame[y + 2, movie.bar_x:movie.bar_x + movie.bar_w] == BAR).all(axis=1).sum())
               for y in movie.bar_rows]
    assert lengths[:2] == [27, 18] and (frame[movie.bar_rows[0] + 2, movie.bar_x + 27] == BAR_TRACK).all()
