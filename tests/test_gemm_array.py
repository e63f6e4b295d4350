"""The GEMM engine's array shape chosen per build or run (``gemm_array``, ``--gemm-array``): it reaches
the board's config, the engine handler, the board build and the simulated board; bad shapes are
refused naming the parameter. No tool and no Verilator run (the handlers are constructed, not
elaborated)."""

import pytest

import boards.build
import firmware.jobs as jobs
from boards.groups import config_for_groups, gemm_array_shapes, parse_gemm_array
from edgelearn import cli
from hw.control.boards import board_handlers, check_board
from hw.control.engine_handler import EngineHandler
from hw.control.protocol import GROUP_GEMM


class Reached(BaseException):
    """Raised where a tool would start, carrying what it was given."""


def test_default_shape_is_the_boards():
    assert config_for_groups("ulx3s") is check_board("ulx3s")
    assert config_for_groups("ulx3s", gemm_array=None) is check_board("ulx3s")


@pytest.mark.parametrize("shape", ["4x8", "4X8", " 4 x 8 ", (4, 8), [4, 8]])
def test_shape_replaces_rows_and_cols_only(shape):
    board = check_board("ulx3s")
    cfg = config_for_groups("ulx3s", gemm_array=shape)
    assert (cfg.gemm["rows"], cfg.gemm["cols"]) == (4, 8) != (board.gemm["rows"], board.gemm["cols"])
    assert {k: v for k, v in cfg.gemm.items() if k not in ("rows", "cols")} == \
        {k: v for k, v in board.gemm.items() if k not in ("rows", "cols")}
    assert (cfg.stdp, cfg.hdqt, cfg.clocks) == (board.stdp, board.hdqt, board.clocks)
    assert board.gemm["rows"] == 8                  # the board's own config is left alone


def test_shape_with_groups():
    cfg = config_for_groups("ulx3s", "gemm,stdp", "16x8")
    assert (cfg.gemm["rows"], cfg.gemm["cols"], cfg.hdqt) == (16, 8, {})


@pytest.mark.parametrize("shape", ["2x4", "8x16", "16x8"])
def test_shape_reaches_the_engine(shape):
    rows, cols = parse_gemm_array(shape)
    handler = board_handlers("ulx3s", config_for_groups("ulx3s", gemm_array=shape),
                             primitives=False)[GROUP_GEMM]()
    assert isinstance(handler, EngineHandler)
    engine = handler._crossing.engine
    assert (handler.rows, handler.cols, engine.rows, engine.cols) == (rows, cols, rows, cols)


def test_every_allowed_shape_builds_an_engine_handler():
    shapes = gemm_array_shapes("ulx3s")
    assert (4, 8) in shapes and (8, 16) in shapes and (16, 16) not in shapes and (4, 6) not in shapes
    for shape in shapes:
        gemm = config_for_groups("ulx3s", gemm_array=shape).gemm
        EngineHandler(**{k: v for k, v in gemm.items() if k != "handler"})
    assert gemm_array_shapes("icebreaker") == ()


@pytest.mark.parametrize("shape,error,message", [
    (8, TypeError, "gemm_array must be a string RxC (e.g. '8x16') or a pair of integers (rows, cols), not 8"),
    ((8, 16.0), TypeError, "gemm_array must be a string RxC"),
    ((8, True), TypeError, "gemm_array must be a string RxC"),
    ("8*16", ValueError,
     "gemm_array must be RxC (rows x columns of the systolic array, e.g. 8x16), not '8*16'"),
    ("8x", ValueError, "gemm_array must be RxC (rows x columns"),
    ("-8x16", ValueError, "gemm_array must be RxC (rows x columns"),
    ("8x14", ValueError,
     "gemm_array must be RxC on ulx3s with rows one of 1, 2, 4, 8, 16 (dividing max_batch 64), cols one of "
     "4, 8, 12, 16 (even, divided by the decoder's 4 lanes) and rows x cols at most 156 (the LFE5U-85F's "
     "multipliers), not '8x14'"),
    ("8x2", ValueError, "cols one of 4, 8, 12, 16"),
    ("3x8", ValueError, "rows one of 1, 2, 4, 8, 16"),
    ("32x4", ValueError, "rows one of 1, 2, 4, 8, 16"),
    ("0x8", ValueError, "rows one of 1, 2, 4, 8, 16"),
    ("16x12", ValueError, "rows x cols at most 156"),
])
def test_bad_shapes(shape, error, message):
    with pytest.raises(error) as e:
        config_for_groups("ulx3s", gemm_array=shape)
    assert message in str(e.value)


@pytest.mark.parametrize("board,groups,message", [
    ("icebreaker", None, "gemm_array is for a board carrying the GEMM engine (ulx3s); icebreaker carries "
                         "no GEMM group, not '4x8'"),
    ("icebreaker", "gemm", "icebreaker with groups 'gemm' has the spram GEMM group, not '4x8'"),
    ("ulx3s", "stdp", "ulx3s with groups 'stdp' carries no GEMM group, not '4x8'"),
])
def test_shape_needs_the_engine(board, groups, message):
    with pytest.raises(ValueError) as e:
        config_for_groups(board, groups, "4x8")
    assert message in str(e.value)


def test_build_board_builds_the_shape(monkeypatch):
    def top(name, *, config=None, clk_hz=None):
        raise Reached(config)
    monkeypatch.setattr(boards.build, "BoardTop", top)
    with pytest.raises(Reached) as e:
        boards.build.build_board("ulx3s", gemm_array="8x16")
    assert (e.value.args[0].gemm["rows"], e.value.args[0].gemm["cols"]) == (8, 16)
    with pytest.raises(ValueError, match="gemm_array must be RxC on ulx3s"):
        boards.build.build_board("ulx3s", gemm_array="8x10")


def test_run_job_simulates_the_shape(monkeypatch):
    def transport(*, board=None, config=None):
        raise Reached(config)
    monkeypatch.setattr(jobs, "SimTransport", transport)
    with pytest.raises(Reached) as e:
        jobs.run_job("gemm", board="ulx3s", sim=True, gemm_array="8x16")
    assert (e.value.args[0].gemm["rows"], e.value.args[0].gemm["cols"]) == (8, 16)
    with pytest.raises(ValueError, match="gemm_array needs a board"):
        jobs.run_job("gemm", sim=True, gemm_array="8x16")


def test_cli_build_passes_the_shape(monkeypatch, capsys):
    seen = []

    def build(name, **kwargs):
        seen.append((name, kwargs["gemm_array"]))
        return {"board": name, "groups": ["system", "gemm"], "gemm_array": "8x16"}
    monkeypatch.setattr(boards.build, "build_board", build)
    assert cli.main(["build", "--board", "ulx3s", "--gemm-array", "8x16"]) == 0
    assert seen == [("ulx3s", "8x16")]
    assert "gemm_array   8x16" in capsys.readouterr().out


def test_cli_build_holds_named_clocks(monkeypatch):
    """``--clock`` builds at the clocks named, trying placer seeds (``hold_clocks``); ``--attempts``
    bounds the runs either way."""
    seen = []

    def build(name, **kwargs):
        seen.append({k: kwargs.get(k) for k in ("engine_clocks", "hold_clocks", "max_attempts")})
        return {"board": name}
    monkeypatch.setattr(boards.build, "build_board", build)
    assert cli.main(["build", "--board", "ulx3s", "--clock", "gemm=125", "--attempts", "4"]) == 0
    assert cli.main(["build", "--board", "ulx3s", "--clock", "gemm=125"]) == 0
    assert cli.main(["build", "--board", "ulx3s", "--attempts", "1"]) == 0
    assert seen == [{"engine_clocks": {"gemm": 125_000_000}, "hold_clocks": True, "max_attempts": 4},
                    {"engine_clocks": {"gemm": 125_000_000}, "hold_clocks": True, "max_attempts": None},
                    {"engine_clocks": None, "hold_clocks": None, "max_attempts": 1}]



def test_bench_board_section_takes_the_shape(monkeypatch, capsys):
    import bench.bench_gemm as bench
    calls = []

    def job(name, **kwargs):
        calls.append(kwargs)
        raise Reached(kwargs)
    monkeypatch.setattr(bench, "measure_lane_rate", lambda *a, **kw: {"rate": 0.98, "table_words": 64})
    monkeypatch.setattr(bench, "run_job", job)
    bench.main(["--only-board", "--gemm-array", "8x16"])
    out = capsys.readouterr().out
    assert "GEMM group: 8x16 array" in out
    assert [ln.split()[2] for ln in out.splitlines() if ln.startswith("int8 ")] == ["128"]   # the peak
    with pytest.raises(Reached):
        bench.main(["--only-board", "--board-sim", "--gemm-array", "8x16"])
    assert calls[-1]["gemm_array"] == "8x16"
    with pytest.raises(SystemExit) as e:
        bench.main(["--only-board", "--gemm-array", "8x15"])
    assert e.value.code == 2
    assert "--gemm-array must be RxC on ulx3s" in capsys.readouterr().err


def test_bench_board_section_reads_the_builds_clocks(monkeypatch, capsys, tmp_path):
    """A build at other engine clocks than the config's (``edgelearn build --clock gemm=125``):
    section 4 takes the array's and the decoder's clocks from its JSON (``clocks_mhz``)."""
    import json

    import bench.bench_gemm as bench
    monkeypatch.setattr(bench, "measure_lane_rate", lambda *a, **kw: {"rate": 0.98, "table_words": 64})
    build = {**bench.ULX3S_BUILD, "clocks_mhz": {"gemm": 125.0, "dec": 65.0},
             "fmax_by_domain": {"gemm": 125.79, "dec": 65.68}}
    path = tmp_path / "build.json"
    path.write_text(json.dumps(build))
    bench.main(["--only-board", "--board-json", str(path)])
    out = capsys.readouterr().out
    assert "8x16 array at 125 MHz, 4 decoder lanes (contexts=2, 65 MHz)" in out
    assert "clock ratio 1.92308" in out
