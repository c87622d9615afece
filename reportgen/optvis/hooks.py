"""Forward hooks for any `nn.Module`, always removed: record layer outputs, stop a forward pass once
the layers it needs have run (a conv1 unit never runs fc7), and eval mode restored afterwards.

Standalone like the rest of optvis (torch only); reportgen's layer lookup builds on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn


class HookError(LookupError):
    """A module path the model does not have, or modules that did not run in the forward pass."""


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode while the block runs; every module's own train/eval mode is restored
    afterwards, even on errors (callers may keep parts frozen while training)."""
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        yield model
    finally:
        for m, training in modes.items():
            m.training = training


def first_tensor(output: Any) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)):
        return next((t for t in map(first_tensor, output) if t is not None), None)
    return None


class _Stop(Exception):
    """Raised inside a hook to end a forward pass once every requested layer has run."""


@contextmanager
def capture(model: nn.Module, paths: list[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Record the outputs of the modules at `paths` while the block runs; hooks are always removed."""
    outputs: dict[str, torch.Tensor] = {}
    handles = []
    try:
        for path in paths:
            try:
                module = model.get_submodule(path)
            except AttributeError:
                raise HookError(f"model has no module {path!r}") from None
            handles.append(module.register_forward_hook(_recorder(outputs, path)))
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def _recorder(outputs: dict[str, torch.Tensor], path: str) -> Any:
    def record(_module: nn.Module, _inputs: Any, output: Any) -> None:
        tensor = first_tensor(output)
        if tensor is not None and path not in outputs:  # first call wins for modules called twice
            outputs[path] = tensor
    return record


def forward_to(model: nn.Module, x: torch.Tensor, paths: list[str], grad: bool = True) -> dict[str, torch.Tensor]:
    """Outputs of the modules at `paths` for input `x`, in the order produced; the forward pass stops
    as soon as the last of them has run, so later layers cost nothing."""
    wanted = set(paths)

    def stop_when_done(_module: nn.Module, _inputs: Any, _output: Any) -> None:
        if wanted <= outputs.keys():
            raise _Stop

    with capture(model, paths) as outputs, torch.set_grad_enabled(grad):
        stoppers = [model.get_submodule(p).register_forward_hook(stop_when_done) for p in set(paths)]
        try:
            model(x)
        except _Stop:
            pass
        finally:
            for handle in stoppers:
                handle.remove()
    missing = wanted - outputs.keys()
    if missing:
        raise HookError(f"modules {sorted(missing)} did not run in the forward pass")
    return outputs


@contextmanager
def relus_replaced(model: nn.Module, function: Callable[[torch.Tensor], torch.Tensor],
                   enabled: bool = True) -> Iterator[None]:
    """Inside the block every `nn.ReLU` module's output is `function(its input)`: a ReLU with its own
    backward (guided backpropagation, a redirected gradient). The ReLUs are made out-of-place for the
    while, since an in-place one would leave its own backward in the graph; hooks always removed."""
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)] if enabled else []
    inplace = {m: m.inplace for m in relus}
    handles = []
    try:
        for m in relus:
            m.inplace = False
            handles.append(m.register_forward_hook(lambda _m, inputs, _out: function(inputs[0])))
        yield
    finally:
        for handle in handles:
            handle.remove()
        for m, flag in inplace.items():
            m.inplace = flag
