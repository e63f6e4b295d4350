"""The block registry: its defaults are the ones the blocks themselves declare."""

import dataclasses

import pytest

from hw.blocks import BlockSpec, Param, all_blocks, declared_defaults, declared_params, help_table

BLOCKS = all_blocks()


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_registry_defaults_are_the_blocks_own(name):
    spec = BLOCKS[name]
    declared = spec.declared_defaults()
    assert set(spec.params) <= set(declared), "a registry parameter the block does not declare"
    assert {k: p.default for k, p in spec.params.items()} == {k: declared[k] for k in spec.params}


def test_declared_defaults_reads_signatures_and_configs():
    def factory(a, b=2, *, c="x"):
        return a

    @dataclasses.dataclass(frozen=True)
    class Config:
        a: int
        b: int = 3

    assert declared_defaults(factory) == {"b": 2, "c": "x"}
    assert declared_defaults(Config) == {"b": 3}
    drifted = BlockSpec(name="t", summary="", factory=factory, params={"b": Param(5, "")})
    assert drifted.declared_defaults()["b"] != drifted.defaults()["b"]


def test_declared_params_take_default_and_kind_from_the_source():
    def factory(width=16, steps=None, mode="fast", fast=False):
        return width

    params = declared_params(factory, {"width": "w", "steps": "s", "mode": "m", "fast": "f"},
                             choices={"mode": ["fast", "slow"]})
    assert params == {"width": Param(16, "w"), "steps": Param(None, "s"),
                      "mode": Param("fast", "m", str, ("fast", "slow")), "fast": Param(False, "f", bool)}
    with pytest.raises(ValueError, match="declares no default for 'depth'"):
        declared_params(factory, {"depth": "d"})


def test_help_table_reads_names_and_continued_helps():
    table = """
        n      transform size
        width  element width,
               2..32
    """
    assert help_table(table) == {"n": "transform size", "width": "element width, 2..32"}


def test_device_params_registry_size_on_the_up5k_user_parameters_win():
    def factory(rows=8, cols=16, fast=True):
        return rows

    params = declared_params(factory, {"rows": "r", "cols": "c", "fast": "f"})
    spec = BlockSpec(name="t", summary="", factory=factory, params=params,
                     smoke_params={"rows": 2}, synth_params={"rows": 1, "cols": 2})
    assert spec.device_params("up5k", {}) == ({"rows": 1, "cols": 2}, {"rows": 1, "cols": 2})
    assert spec.device_params("up5k", {"cols": 4, "fast": False}) == (
        {"rows": 1, "cols": 4, "fast": False}, {"rows": 1})
    assert spec.device_params("ecp5-85f", {}) == ({}, {})
    assert spec.device_params("ecp5-85f", {"rows": 3}) == ({"rows": 3}, {})
    smoke_sized = dataclasses.replace(spec, synth_params=None)
    assert smoke_sized.device_params("up5k", {}) == ({"rows": 2}, {"rows": 2})
