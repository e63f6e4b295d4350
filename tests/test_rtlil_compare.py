"""bench/rtlil_compare.py: src attributes do not count, any other change does."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.rtlil_compare import compare, designs, main, strip_src, write_designs
from hw.blocks import all_blocks


def test_strip_src_keeps_everything_else():
    text = 'module \\top\n  attribute \\src "a.py:1"\n  wire width 4 \\x\n  attribute \\init 4\'0000\nend\n'
    assert strip_src(text) == "module \\top\n  wire width 4 \\x\n  attribute \\init 4'0000\nend\n"


def test_compare_finds_identical_and_changed_designs(tmp_path):
    ref, new = tmp_path / "ref", tmp_path / "new"
    index = write_designs(ref, only=["lfsr"])
    write_designs(new, only=["lfsr"])
    assert compare(ref, new) == [(label, "identical") for label in index]
    label, = index      # the registry's one lfsr configuration
    changed = new / index[label]
    changed.write_text(changed.read_text().replace("wire width 16", "wire width 17", 1))
    assert dict(compare(ref, new))[label] == "different (2 lines)"


def test_matrix_adds_the_huffman_lane_kinds():
    plain = designs(only=["huffman_decoder"])
    more = designs(only=["huffman_decoder"], matrix=True)
    assert set(plain) < set(more)
    added = [label for label in more if label not in plain]
    for contexts in (1, 2):
        for escape in (False, True):
            for cfg in ("lanes=1 max_len=8", "lanes=2 max_len=12", "lanes=1 max_len=16"):
                assert any(f" contexts={contexts} " in label and f" escape={escape} " in label
                           and cfg in label for label in more), (contexts, escape, cfg)
    assert sum("impl=table" in label for label in more) == 12
    assert len(added) == len(set(added)) and len(more) == 40


def test_only_takes_block_names_or_boards(tmp_path, capsys):
    # "core" is how the board cores' labels start, not a block: one line and exit 2, before
    # anything is generated (it used to write nothing and crash on the empty comparison).
    ref = tmp_path / "ref"
    write_designs(ref, only=["lfsr"])
    with pytest.raises(SystemExit) as e:
        main(["--only", "core", "--ref", str(ref)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("error: --only takes block names or 'boards' (the board cores), not 'core'; "
                            "the blocks are: " + ", ".join(all_blocks()))
    assert main(["--only", "lfsr", "--ref", str(ref)]) == 0


#: A design using three clock domains it does not define (as the ULX3S core: sync, gemm, dec);
#: prints the hashes of Amaranth's own RTLIL of it and of :func:`bench.rtlil_compare.convert`'s
#: (without src attributes: the domains are created on other source lines).
THREE_DOMAINS = """
import hashlib
from amaranth.back import rtlil
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from bench.rtlil_compare import convert, strip_src

class ThreeDomains(wiring.Component):
    i: In(1)
    o: Out(3)

    def elaborate(self, platform):
        m = Module()
        for n, domain in enumerate(("sync", "gemm", "dec")):
            m.d[domain] += self.o[n].eq(self.i)
        return m

for text in (rtlil.convert(ThreeDomains(), name="top"), convert(ThreeDomains)):
    print(hashlib.sha256(strip_src(text).encode()).hexdigest())
"""


def test_convert_orders_missing_domains_whatever_the_hash_seed():
    root = Path(__file__).resolve().parents[1]
    runs = {}
    for seed in ("1", "9"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(root)}
        out = subprocess.run([sys.executable, "-c", THREE_DOMAINS], env=env, cwd=root, capture_output=True,
                             text=True, check=True).stdout.split()
        runs[seed] = dict(zip(("amaranth", "convert"), out))
    # Amaranth creates the domains (and their ports) in a set's order, another with each hash seed;
    # with seed 9 that set iterates in name order, which convert() takes whatever the seed.
    assert runs["1"]["amaranth"] != runs["9"]["amaranth"]
    assert runs["1"]["convert"] == runs["9"]["convert"] == runs["9"]["amaranth"]
