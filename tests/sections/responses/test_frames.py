"""Response-movie frames composed with array operations."""

from pathlib import Path

import imageio.v2 as imageio
import numpy as np

from reportgen.drawing.video import accelerating_durations, write_mp4


def _decode(path: Path) -> list[np.ndarray]:
    with imageio.get_reader(path, format="FFMPEG") as reader:
        return [np.asarray(frame) for frame in reader]



def test_frame_cells_follow_per_layer_ranges_and_wrap() -> None:
    from reportgen.drawing.colors import BACKGROUND, hot_colormap
    from reportgen.sections.responses.frames import BAR, BAR_TRUE, ResponseMovie

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


def test_response_frames_follow_the_kept_order_and_encode(tmp_path: Path) -> None:
    import torch

    from reportgen.nets.architectures import create_model
    from reportgen.sections.responses.frames import response_frames
    from reportgen.sections.responses.recording import record_responses

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
    movie, frames = response_frames([(layer.name, layer.units) for layer in rec.layers], rec.class_names, images,
                                    rec.probs, rec.labels, rec.keep.tolist(),
                                    [layer.kept_units for layer in rec.layers],
                                    title="Model I")
    frames = list(frames)
    y, x = movie.image_at
    s = movie.scale_by
    for frame, index in zip(frames, [4, 1, 5], strict=True):
        assert (frame[y:y + 16 * s:s, x:x + 16 * s:s, 0] == images[index, :, :, 0]).all()
    info = write_mp4(frames, tmp_path / "r.mp4", accelerating_durations(3, 0.2, 0.04), tmp_path / "r.png")
    assert len(_decode(tmp_path / "r.mp4")) == info.frames == 5 + 2 + 1  # 0.2 s, 0.09 s, 0.04 s at 25 fps
    assert info.size == movie.size


def test_many_classes_show_the_most_probable_bars_first() -> None:
    from reportgen.sections.responses.frames import BAR, BAR_TRACK, ResponseMovie

    movie = ResponseMovie([("fc", 3)], [f"c{i}" for i in range(30)], (8, 8, 3), np.array([[0, 1]]), max_bars=5)
    probs = np.full(30, 0.5 / 28)
    probs[[7, 19]] = 0.3, 0.2
    frame = movie.frame(np.zeros((8, 8, 3), np.uint8), probs, np.zeros(3, np.float32))
    assert len(movie.bar_rows) == 5
    lengths = [int((frame[y + 2, movie.bar_x:movie.bar_x + movie.bar_w] == BAR).all(axis=1).sum())
               for y in movie.bar_rows]
    assert lengths[:2] == [27, 18] and (frame[movie.bar_rows[0] + 2, movie.bar_x + 27] == BAR_TRACK).all()


def test_a_stacked_frame_fits_a_phone_with_the_bars_beside_the_input_and_names_above_the_cells() -> None:
    from reportgen.drawing.colors import BACKGROUND
    from reportgen.sections.responses.frames import ResponseMovie

    layers = [("conv1", 20), ("conv2", 100), ("fc5", 256)]
    wide = ResponseMovie(layers, list("0123456789"), (28, 28, 1), np.array([[0, 1]] * 3), title="Model I")
    narrow = ResponseMovie(layers, list("0123456789"), (28, 28, 1), np.array([[0, 1]] * 3), title="Model I",
                           width=352)
    assert narrow.size[0] == 352 and wide.size[0] > 700 and narrow.size[1] > wide.size[1]
    y, x = narrow.image_at
    assert narrow.bar_x > x + 112 and narrow.bar_rows[0] < y + 112  # beside the 4x input, not below it
    assert narrow.pct_x + narrow.pct_w <= 352
    columns = (352 - 20) // 7
    assert narrow.cell_at(2, columns) == (narrow.cell_at(2, 0)[0] + 7, narrow.cell_at(2, 0)[1])  # wrapped
    assert narrow.cell_at(1, 0)[0] > narrow.cell_at(0, 0)[0] + 16 + 7  # room for a name between layers
    frame = narrow.frame(np.zeros((28, 28, 1), np.uint8), np.full(10, 0.1), np.ones(376, np.float32), label=3)
    last_row, last_col = narrow.cell_at(2, 255)
    assert last_col + 6 <= 352 - 10 and tuple(frame[last_row + 6, last_col]) == BACKGROUND
    name_row = narrow.cell_at(1, 0)[0] - 18  # conv2's name, drawn above its first row
    assert (frame[name_row:name_row + 16, 10:60] != BACKGROUND).any()
