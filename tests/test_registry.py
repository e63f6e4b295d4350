"""The block registry: its defaults are the ones the blocks themselves declare."""

import dataclasses

import pytest

from hw.blocks import BlockSpec, Param, all_blocks, declared_defaults

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
