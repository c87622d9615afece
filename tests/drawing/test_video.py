"""MP4 output: decodes with the frame count, order and padded size expected; poster; speeding-up schedules."""

from pathlib import Path

import imageio.v2 as imageio
import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from reportgen.drawing.video import accelerating_durations, frame_repeats, pad_frame, write_mp4

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
