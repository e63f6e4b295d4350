"""The block registry: what ``edgelearn list/generate/synth/sim/demo`` know about.

A block subpackage ``hw/<pkg>/__init__.py`` declares ``BLOCKS = [BlockSpec(...), ...]``.
:func:`all_blocks` imports every subpackage of :mod:`hw` and collects them, so adding a block
never touches the CLI.
"""

import dataclasses
import importlib
import inspect
import pkgutil
from dataclasses import dataclass, field

import hw

__all__ = ["Param", "BlockSpec", "all_blocks", "get_block", "declared_defaults", "declared_params",
           "help_table"]


def declared_defaults(source):
    """``{parameter: default}`` that ``source`` declares: a dataclass's field defaults (e.g. a block's
    config), else the defaults in a callable's signature (e.g. a component's constructor).

    Registries take their :class:`Param` defaults from here, so a block's defaults are written once.
    """
    if dataclasses.is_dataclass(source):
        return {f.name: f.default for f in dataclasses.fields(source) if f.default is not dataclasses.MISSING}
    return {name: p.default for name, p in inspect.signature(source).parameters.items()
            if p.default is not inspect.Parameter.empty}


@dataclass(frozen=True)
class Param:
    """One elaboration parameter of a block.

    ``kind`` is ``int``, ``str`` or ``bool``; the CLI parses ``-p name=value`` with it. ``choices``
    (optional) lists allowed values for the CLI's help; the component itself still checks.
    """
    default: object
    help: str
    kind: type = int
    choices: tuple = ()

    def parse(self, name, text):
        if self.kind is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"{name} must be true or false, not {text!r}")
        if self.kind is int:
            try:
                return int(text, 0)
            except ValueError:
                raise ValueError(f"{name} must be an integer, not {text!r}") from None
        return text


def help_table(text):
    """``{name: help}`` from a table of lines ``name  help text``; a line indented deeper than the
    names continues the help above it."""
    lines = [line for line in text.splitlines() if line.strip()]
    indent = min(len(line) - len(line.lstrip()) for line in lines)
    helps, name = {}, None
    for line in lines:
        if len(line) - len(line.lstrip()) == indent:
            name, _, help = line.strip().partition(" ")
            helps[name] = help.strip()
        elif name is None:
            raise ValueError(f"help table: a continued help before the first name: {line.strip()!r}")
        else:
            helps[name] += " " + line.strip()
    return helps


def declared_params(source, helps, choices=None):
    """The registry's ``params``: one :class:`Param` for each parameter named in ``helps`` (a
    :func:`help_table` or ``{name: help}``), with the default ``source`` declares
    (:func:`declared_defaults`).

    A parameter's ``kind`` follows its default: ``bool`` or ``str`` for a default of that type,
    else ``int`` (also for a default of ``None``, meaning "derived from the others").
    ``choices`` (``{name: allowed values}``) adds the allowed values for the CLI's help.
    """
    helps = help_table(helps) if isinstance(helps, str) else dict(helps)
    defaults = declared_defaults(source)
    choices = choices or {}
    undeclared = sorted((set(helps) | set(choices)) - set(defaults))
    if undeclared:
        raise ValueError(f"{getattr(source, '__name__', source)!r} declares no default for "
                         f"{undeclared[0]!r}; its defaults are: {', '.join(defaults)}")
    params = {}
    for name, help in helps.items():
        default = defaults[name]
        kind = type(default) if isinstance(default, (bool, str)) else int
        params[name] = Param(default, help, kind, tuple(choices.get(name, ())))
    return params


@dataclass(frozen=True)
class BlockSpec:
    """A generatable block.

    Parameters
    ----------
    name : str
        CLI name, e.g. ``"lfsr"``.
    summary : str
        One line for ``edgelearn list``.
    factory : callable
        ``factory(**params) -> wiring.Component``; raises ``ValueError`` on bad parameters.
    params : dict of str to Param
    smoke_test : str or None
        Dotted module path of a cocotb testbench (in ``sim/``) that ``edgelearn sim`` and
        ``edgelearn demo`` run against the golden model with the default parameters.
    smoke_params : dict
        Parameter overrides for the smoke test (e.g. a smaller array).
    synth_params : dict or None
        Parameter overrides for the iCE40UP5K: the size (and backend) the block has on the
        iCEBreaker, used by the demo's synthesis row and by ``edgelearn synth --device up5k``
        (:meth:`device_params`). ``None``: the same as ``smoke_params``. The parameters' defaults
        are the ECP5 sizes.
    demo : str or None
        ``"module:function"`` of the block's real-data demo; the function takes no arguments and
        returns a list of ``(label, value)`` string rows that ``edgelearn demo`` prints.
    defaults_from : class or callable, optional
        Where the parameters' defaults are declared (:func:`declared_defaults`), if not in the
        factory's signature: e.g. the block's config dataclass.
    synth_router : str or None
        nextpnr router for the UP5K synthesis (the demo's row and ``edgelearn synth --device up5k``;
        ``"router2"``), None: nextpnr's default.
    """
    name: str
    summary: str
    factory: object
    params: dict = field(default_factory=dict)
    smoke_test: str = None
    smoke_params: dict = field(default_factory=dict)
    synth_params: dict = None
    demo: str = None
    defaults_from: object = None
    synth_router: str = None

    def declared_defaults(self):
        """The defaults the block itself declares (constructor or config), for the registry's check."""
        return declared_defaults(self.defaults_from or self.factory)

    def synth_overrides(self):
        return dict(self.smoke_params if self.synth_params is None else self.synth_params)

    def device_params(self, device, explicit):
        """The parameter overrides of a synthesis for ``device`` (``edgelearn synth``): on
        ``"up5k"`` the block's iCEBreaker size (:meth:`synth_overrides`, as in the demo's row), on
        other devices none (the defaults); each parameter in ``explicit`` (the user's ``-p``) wins
        over the registry's. Returns ``(overrides, from_registry)``, ``from_registry`` being the
        registry's values that were applied, for the CLI to print."""
        device_overrides = self.synth_overrides() if device == "up5k" else {}
        from_registry = {k: v for k, v in device_overrides.items() if k not in explicit}
        return {**from_registry, **explicit}, from_registry

    def defaults(self):
        return {k: p.default for k, p in self.params.items()}

    def build(self, **overrides):
        unknown = sorted(set(overrides) - set(self.params))
        if unknown:
            allowed = ", ".join(self.params) or "(none)"
            raise ValueError(f"block {self.name!r} has no parameter {unknown[0]!r}; "
                             f"its parameters are: {allowed}")
        params = {**self.defaults(), **overrides}
        return self.factory(**params)


def all_blocks():
    """Every registered block, by name, in discovery order."""
    blocks = {}
    for info in pkgutil.iter_modules(hw.__path__):
        if not info.ispkg:
            continue
        module = importlib.import_module(f"hw.{info.name}")
        for spec in getattr(module, "BLOCKS", []):
            blocks[spec.name] = spec
    return blocks


def get_block(name):
    blocks = all_blocks()
    if name not in blocks:
        allowed = ", ".join(sorted(blocks))
        raise ValueError(f"unknown block {name!r}; the blocks are: {allowed}")
    return blocks[name]
