"""Preferred inputs of units of any `nn.Module`, by regularized activation maximization.

`param` (pixel / Fourier images), `objectives` (per-row unit scores, composable), `regularizers`
(Yosinski et al. 2015 priors), `transforms` (per-row jitter), `render` (the batched optimizer and
real-image maxima), `window` (the receptive-field crop a conv unit's ascent runs the network on) and
`search` (random search over regularization settings). Torch only.
"""

from reportgen.optvis.objectives import Objective, Unit, image_l2, units
from reportgen.optvis.render import (
    DEFAULT_CHUNK_SIZE,
    Rendering,
    Settings,
    UnitMaxima,
    UnitRecord,
    render,
    unit_maxima,
)
from reportgen.optvis.search import GroupSearch, SearchResult, SearchSpace, search
from reportgen.optvis.window import Window, center_window

__all__ = ["DEFAULT_CHUNK_SIZE", "GroupSearch", "Objective", "Rendering", "SearchResult", "SearchSpace", "Settings",
           "Unit", "UnitMaxima", "UnitRecord", "Window", "center_window", "image_l2", "render", "search",
           "unit_maxima", "units"]
