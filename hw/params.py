"""Elaboration-time parameter checks shared by every block.

Every check raises an exception whose message names the parameter and the allowed values, in the
form ``"<name> must be <allowed>, not <value!r>"``: :class:`ParameterTypeError` (a ``TypeError``)
for a value of the wrong type, ``ValueError`` for a value out of range.
"""

__all__ = ["ParameterTypeError", "check_int", "check_choice", "check_pow2", "check_bool", "check_domain"]


class ParameterTypeError(TypeError, ValueError):
    """A parameter of the wrong type. Also a ``ValueError``, so ``except ValueError`` catches every
    bad parameter."""


def check_int(name, value, lo=None, hi=None):
    """Return ``value`` if it is an ``int`` within ``[lo, hi]`` (either bound may be ``None``)."""
    if lo is not None and hi is not None:
        allowed = f"an integer from {lo} to {hi}"
    elif lo is not None:
        allowed = f"an integer >= {lo}"
    elif hi is not None:
        allowed = f"an integer <= {hi}"
    else:
        allowed = "an integer"
    if not isinstance(value, int) or isinstance(value, bool):
        raise ParameterTypeError(f"{name} must be {allowed}, not {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(f"{name} must be {allowed}, not {value!r}")
    return value


def check_choice(name, value, choices):
    """Return ``value`` if it is one of ``choices``."""
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {allowed}, not {value!r}")
    return value


def check_pow2(name, value, lo=1, hi=None):
    """Return ``value`` if it is a power of two within ``[lo, hi]``."""
    rng = f" from {lo} to {hi}" if hi is not None else f" >= {lo}"
    if not isinstance(value, int) or isinstance(value, bool):
        raise ParameterTypeError(f"{name} must be a power of two{rng}, not {value!r}")
    if value <= 0 or value & (value - 1) or value < lo or (hi is not None and value > hi):
        raise ValueError(f"{name} must be a power of two{rng}, not {value!r}")
    return value


def check_bool(name, value):
    if not isinstance(value, bool):
        raise ParameterTypeError(f"{name} must be True or False, not {value!r}")
    return value


def check_domain(name, value):
    """A clock domain's name: a str that is a Python identifier."""
    if not isinstance(value, str) or not value.isidentifier():
        raise ParameterTypeError(f"{name} must be a clock domain name (str), not {value!r}")
    return value
