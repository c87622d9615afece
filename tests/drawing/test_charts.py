"""The checks' charts print layer names and model names as written, never as mathtext."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from reportgen.drawing.charts import finish_chart  # noqa: E402


def test_a_dollar_in_a_layer_or_model_name_is_drawn_not_parsed(tmp_path: Path) -> None:
    fig, ax = plt.subplots()
    ax.plot([1, 2], [0.5, 0.7])
    ax.set_xticks([1, 2], ["blocks.$\\frac$", "fc"])  # as mathtext, a broken formula that cannot be drawn
    size = finish_chart(fig, ax, "Model $ II", tmp_path / "chart.png")
    assert size["width"] > 0 and (tmp_path / "chart.png").is_file()
