"""A TorchScript archive (`torch.jit.save`) made an ordinary `nn.Module` that reportgen can hook.

torch runs no Python forward hooks inside TorchScript: a scripted network's submodules are called by
compiled code, so a hook on `layer1` would never fire, and every section after the first records
layer outputs through hooks. The archive still holds the whole module tree, each module's compiled
graph and its weights, so `rebuild` turns it back into Python:

- modules of torch.nn (Conv2d, BatchNorm2d, ReLU, Linear, Sequential, ...) become the real torch.nn
  classes, built from the scripted module's own attributes and loaded with its tensors, so layers are
  found, receptive fields computed and ReLUs replaced exactly as for a network built in Python;
- every other module (the author's own blocks, the network itself) becomes a `ScriptedModule`, which
  runs its compiled graph op by op in eager PyTorch (`torch.ops`, so autograd works) and calls its
  submodules as Python modules, so their hooks fire.

`load` then checks that the rebuilt network computes what the archive computes, on the data's input
shape, before anything uses it. No Python pickle is read: `torch.jit.load` reads TorchScript's own
format, and its code can only call torch operators.
"""

from __future__ import annotations

import importlib
import inspect
import re
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from reportgen.errors import ModelError, first_line

_TORCH_NN = "__torch__.torch.nn.modules."
_CONTAINERS = {"Sequential": nn.Sequential, "ModuleList": nn.ModuleList, "ModuleDict": nn.ModuleDict}


def is_archive(path: Path) -> bool:
    """Whether a file is a TorchScript archive: a zip holding the module's compiled code/."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.split("/", 2)[1:2] == ["code"] for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def load(path: Path, input_shape: tuple[int, int, int]) -> nn.Module:
    """The archive at `path` as a Python module in eval mode, checked against the archive itself on a
    random batch of `input_shape` (channels, height, width): the two must agree to float precision."""
    if not path.is_file():
        raise ModelError(f"{path}: TorchScript file not found")
    if not is_archive(path):
        raise ModelError(f"{path}: not a TorchScript archive (written by torch.jit.save)")
    try:
        # torch.jit.load's own steps, keeping the compilation unit: it holds the archive's functions
        unit = torch._C.CompilationUnit()
        script = torch.jit._recursive.wrap_cpp_module(
            torch._C.import_ir_module(unit, str(path), torch.device("cpu"), {}, False)).eval()
    except Exception as e:  # torch raises RuntimeError and others for damaged or foreign archives
        raise ModelError(f"{path}: cannot load this TorchScript archive ({first_line(e)})") from None
    try:
        network = rebuild(script, unit).eval()
    except UnsupportedScript as e:
        raise ModelError(f"{path}: {e}") from None
    x = torch.randn(2, *input_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        try:
            want = script(x)
        except Exception as e:  # the archive may refuse the input, with any exception type
            raise ModelError(f"{path}: the network cannot take {'x'.join(map(str, input_shape))} inputs "
                             f"({first_line(e)}); check data.image_size and data.channels, or the model's own "
                             "image_size and channels") from None
        try:
            got = network(x)
        except UnsupportedScript as e:
            raise ModelError(f"{path}: {e}") from None
        except Exception as e:  # a construct run wrongly: say so rather than blame the input
            raise ModelError(f"{path}: reportgen cannot run this archive from Python "
                             f"({e.__class__.__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    if not isinstance(want, torch.Tensor) or not isinstance(got, torch.Tensor) or want.shape != got.shape:
        raise ModelError(f"{path}: the archive's forward does not return one tensor of logits")
    gap = (want - got).abs().max().item()
    if not gap <= 1e-4 * max(1.0, want.abs().max().item()):
        raise ModelError(f"{path}: reportgen's reading of this archive computes other outputs than torch.jit "
                         f"(largest difference {gap:.3g}); please report this archive")
    return network


class UnsupportedScript(Exception):
    """A construct of TorchScript that `ScriptedModule` does not run."""


def _class_name(script: torch.jit.ScriptModule) -> str:
    """'__torch__.torch.nn.modules.conv.Conv2d' from a possibly mangled qualified name."""
    return re.sub(r"___torch_mangle_\d+\.", "", script._c._type().qualified_name())


def rebuild(script: torch.jit.ScriptModule, unit: torch._C.CompilationUnit) -> nn.Module:
    """The Python module for a scripted one (see the module docstring); `unit` holds the archive's
    free functions (torch.nn.functional's, the author's), which its graphs call."""
    name = _class_name(script)
    children = OrderedDict((n, rebuild(c, unit)) for n, c in script.named_children())
    if name.startswith(_TORCH_NN):
        cls_name = name.rsplit(".", 1)[1]
        if cls_name in _CONTAINERS:
            if cls_name == "ModuleList":
                return nn.ModuleList(children.values())
            return _CONTAINERS[cls_name](children)
        if not children and (module := _torch_nn_leaf(script, name)) is not None:
            return module
    return ScriptedModule(script, children, unit)


def _torch_nn_leaf(script: torch.jit.ScriptModule, name: str) -> nn.Module | None:
    """The real torch.nn module a scripted leaf was made from, built from its attributes (its
    constructor's parameters are kept as attributes by torch.nn) and loaded with its tensors; None
    when its constructor asks for something the archive does not record."""
    module_path, cls_name = name[len("__torch__."):].rsplit(".", 1)
    try:
        cls = getattr(importlib.import_module(module_path), cls_name)
    except (ImportError, AttributeError):
        return None
    kwargs = {}
    for param in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if param.name in ("device", "dtype") or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if param.name == "bias" and hasattr(script, "bias"):
            kwargs["bias"] = script.bias is not None
        elif hasattr(script, param.name):
            value = getattr(script, param.name)
            kwargs[param.name] = tuple(value) if isinstance(value, list) else value
        elif param.default is param.empty:
            return None
    try:
        module = cls(**kwargs)
        module.load_state_dict(script.state_dict())
    except Exception:  # an attribute that is not the constructor's argument after all: run its graph
        return None
    return module.train(script.training)


class ScriptedModule(nn.Module):
    """A scripted module run from Python: its own parameters, buffers and Python children, and its
    compiled methods interpreted node by node (`_run`)."""

    def __init__(self, script: torch.jit.ScriptModule, children: dict[str, nn.Module],
                 unit: torch._C.CompilationUnit) -> None:
        super().__init__()
        self._script_type = _class_name(script)
        self._graphs = {m: script._c._get_method(m).graph for m in script._c._method_names()}
        for n, child in children.items():
            self.add_module(n, child)
        for n, p in script.named_parameters(recurse=False):
            self.register_parameter(n, nn.Parameter(p.detach().clone(), requires_grad=p.requires_grad))
        for n, b in script.named_buffers(recurse=False):
            self.register_buffer(n, b.detach().clone())
        # plain attributes (ints, lists, strings) the graphs read, looked up in the archive's module
        # when first read; kept outside nn.Module's registries so they are no second copy of the weights
        self.__dict__["_script"] = script
        self.__dict__["_unit"] = unit
        self._constants: dict[str, Any] = {}
        self.train(script.training)

    def extra_repr(self) -> str:
        return self._script_type

    def forward(self, *args: Any, method: str = "forward") -> Any:
        return self._run(method, args)

    def _run(self, method: str, args: tuple[Any, ...]) -> Any:
        graph = self._graphs.get(method)
        if graph is None:
            raise UnsupportedScript(f"module {self._script_type} has no method {method!r}")
        return _run_graph(graph, (self, *args), self.__dict__["_unit"])

    def attribute(self, name: str) -> Any:
        if name == "training":
            return self.training
        if name in self._modules or name in self._parameters or name in self._buffers:
            return getattr(self, name)
        if name not in self._constants:
            self._constants[name] = getattr(self.__dict__["_script"], name)
        return self._constants[name]


def _run_graph(graph: Any, args: tuple[Any, ...], unit: torch._C.CompilationUnit) -> Any:
    """A method's or function's graph run on `args` (a method's first is its module)."""
    env: dict[int, Any] = {}
    inputs = list(graph.inputs())
    if len(inputs) != len(args):
        raise TypeError(f"a TorchScript graph of {len(inputs)} inputs was given {len(args)}")
    for value, arg in zip(inputs, args, strict=True):
        env[value.unique()] = arg
    outputs = _run_block(graph, env, unit)
    return outputs[0] if len(outputs) == 1 else tuple(outputs)


def _run_block(block: Any, env: dict[int, Any], unit: torch._C.CompilationUnit) -> list[Any]:
    """Run a graph or a block's nodes in order; the values of its outputs."""
    for node in block.nodes():
        results = _run_node(node, env, unit)
        outputs = list(node.outputs())
        if len(outputs) == 1:
            env[outputs[0].unique()] = results
        else:
            for value, result in zip(outputs, results, strict=True):
                env[value.unique()] = result
    return [env[v.unique()] for v in block.outputs()]


_FORWARD = re.compile(r"forward(\d*|__\d+)")


def _attribute(obj: Any, name: str) -> Any:
    if isinstance(obj, ScriptedModule):
        return obj.attribute(name)
    return getattr(obj, name)


def _run_node(node: Any, env: dict[int, Any], unit: torch._C.CompilationUnit) -> Any:
    kind = node.kind()
    args = [env[v.unique()] for v in node.inputs()]
    if kind == "prim::Constant":
        return node.output().toIValue()
    if kind == "prim::GetAttr":
        return _attribute(args[0], node.s("name"))
    if kind == "prim::SetAttr":
        setattr(args[0], node.s("name"), args[1])
        return None
    if kind == "prim::CallMethod":
        obj, rest, method = args[0], args[1:], node.s("name")
        if _FORWARD.fullmatch(method):  # forward, or a traced module's second call, forward1, ...
            # through nn.Module.__call__, so the child's hooks fire
            return obj(*rest, method=method) if isinstance(obj, ScriptedModule) else obj(*rest)
        if isinstance(obj, ScriptedModule):
            return obj._run(method, tuple(rest))
        return getattr(obj, method)(*rest)
    if kind == "prim::CallFunction":
        # the function's own compiled graph from the archive, never a Python function of that name
        function = unit.find_function(str(node.inputsAt(0).type()))
        if function is None:
            raise UnsupportedScript(f"the archive calls a function {node.inputsAt(0).type()} it does not hold")
        return _run_graph(function.graph, tuple(args[1:]), unit)
    if kind == "prim::If":
        blocks = list(node.blocks())
        outs = _run_block(blocks[0] if args[0] else blocks[1], env, unit)
        return outs[0] if len(outs) == 1 else outs
    if kind == "prim::Loop":
        return _loop(node, args, env, unit)
    if kind == "prim::ListConstruct":
        return list(args)
    if kind == "prim::TupleConstruct":
        return tuple(args)
    if kind in ("prim::ListUnpack", "prim::TupleUnpack"):
        return list(args[0])
    if kind == "prim::TupleIndex":
        return args[0][args[1]]
    if kind == "prim::DictConstruct":
        return dict(zip(args[::2], args[1::2], strict=True))
    if kind == "prim::unchecked_cast":
        return args[0]
    if kind == "prim::Uninitialized":
        return None
    if kind == "prim::RaiseException":
        raise RuntimeError(str(args[0]) if args else "TorchScript raised an exception")
    if kind == "aten::__is__":
        return args[0] is args[1]
    if kind == "aten::__isnot__":
        return args[0] is not args[1]
    if kind == "aten::__not__":
        return not args[0]
    if kind == "aten::warn":
        return None
    if kind in _LIST_OPS:
        return _LIST_OPS[kind](*args)
    return _operator(node, kind, args)


# list methods that torch.ops would apply to a converted copy of the list, not to the list itself
_LIST_OPS = {
    "aten::append": lambda xs, x: xs.append(x) or xs,
    "aten::len": len,
    "aten::__getitem__": lambda xs, i: xs[i],
    "aten::_set_item": lambda xs, i, x: xs.__setitem__(i, x) or xs,
}


def _loop(node: Any, args: list[Any], env: dict[int, Any], unit: torch._C.CompilationUnit) -> Any:
    """prim::Loop(max trips, initial condition, carried...): its block takes (iteration, carried...)
    and returns (condition, carried...)."""
    trips, condition, carried = args[0], args[1], list(args[2:])
    block = next(iter(node.blocks()))
    params = list(block.inputs())
    i = 0
    while condition and i < trips:
        env[params[0].unique()] = i
        for value, arg in zip(params[1:], carried, strict=True):
            env[value.unique()] = arg
        outs = _run_block(block, env, unit)
        condition, carried = outs[0], outs[1:]
        i += 1
    return carried[0] if len(carried) == 1 else carried


_OVERLOAD = re.compile(r"^[\w:]+?(?:\.(\w+))?\(")


def _operator(node: Any, kind: str, args: list[Any]) -> Any:
    """Any other node: the torch operator of its schema, keyword-only arguments passed by name."""
    namespace, name = kind.split("::", 1)
    try:
        schema = node.schema()
    except RuntimeError:
        schema = "(no schema)"
    if schema == "(no schema)":
        raise UnsupportedScript(f"reportgen cannot run TorchScript's {kind} from Python")
    overload = _OVERLOAD.match(schema)
    try:
        packet = getattr(getattr(torch.ops, namespace), name)
        op = getattr(packet, overload[1] if overload and overload[1] else "default")
    except (AttributeError, RuntimeError):
        raise UnsupportedScript(f"reportgen cannot run TorchScript's {kind} from Python") from None
    parsed = torch._C.parse_schema(schema)
    positional, keywords = [], {}
    for argument, value in zip(parsed.arguments, args, strict=True):
        if argument.kwarg_only:
            keywords[argument.name] = value
        else:
            positional.append(value)
    return op(*positional, **keywords)
