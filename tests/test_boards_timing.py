"""boards.timing: endpoints over a period, by block, from nextpnr's detailed timing report."""

import json

import pytest

from boards import timing

GEMM = "posedge $glbnet$core.engine.gemm_clk"
SYNC = "posedge $glbnet$clk"


def _net(name, driver, port, event, endpoints):
    return {"net": name, "driver": driver, "port": port, "event": event,
            "endpoints": [{"cell": c, "port": p, "delay": [d / 2, d], "event": e}
                          for c, p, d, e in endpoints]}


# A hand-made report in nextpnr's layout: endpoints only, each with its arrival (ns) under the
# net that reaches it; one endpoint listed twice (two launching paths), one crossing clocks.
REPORT = {"detailed_net_timings": [
    _net("core.engine.seq.go", "core.engine.seq.state_LUT4_Z", "F", GEMM, [
        ("core.engine.seq.beats_TRELLIS_FF_Q_3", "CE", 9.5, GEMM),
        ("core.engine.seq.beats_TRELLIS_FF_Q_4", "CE", 7.9, GEMM),
        ("core.engine.array.pe3_5.acc_TRELLIS_FF_Q_1", "DI", 8.5, GEMM),
        ("core.engine.array.pe0_1.acc_TRELLIS_FF_Q_1", "DI", 4.0, GEMM),
    ]),
    _net("core.engine.seq.other", "core.engine.seq.x_LUT4_Z", "F", GEMM, [
        ("core.engine.seq.beats_TRELLIS_FF_Q_4", "CE", 8.2, GEMM),      # the later of two paths
    ]),
    _net("core.engine.cdc.w", "core.engine.cdc.w_TRELLIS_FF_Q", "Q", GEMM, [
        ("core.ctl.r_TRELLIS_FF_Q", "DI", 20.0, SYNC),                   # captured by another clock
    ]),
    _net("core.ctl.x", "core.ctl.x_LUT4_Z", "F", SYNC, [
        ("core.ctl.$signal$83_TRELLIS_FF_Q_2", "DI", 30.0, SYNC),
    ]),
    # Listed under another clock, yet captured by the GEMM clock (nextpnr lists a net under one
    # launching clock even when paths from several reach it): it counts for the GEMM clock.
    _net("core.engine.seq.err_en", "core.engine.seq.err_LUT4_Z", "F", SYNC, [
        ("core.engine.seq.err_TRELLIS_FF_Q", "CE", 9.2, GEMM),
    ]),
]}


def test_endpoint_arrivals_one_clock_latest_path():
    arr = timing.endpoint_arrivals(REPORT, "gemm_clk")
    assert set(arr) == {("core.engine.seq.beats_TRELLIS_FF_Q_3", "CE"),
                        ("core.engine.seq.beats_TRELLIS_FF_Q_4", "CE"),
                        ("core.engine.array.pe3_5.acc_TRELLIS_FF_Q_1", "DI"),
                        ("core.engine.array.pe0_1.acc_TRELLIS_FF_Q_1", "DI"),
                        ("core.engine.seq.err_TRELLIS_FF_Q", "CE")}
    assert arr[("core.engine.seq.beats_TRELLIS_FF_Q_4", "CE")] == (8.2, "core.engine.seq.x_LUT4_Z")
    assert arr[("core.engine.seq.beats_TRELLIS_FF_Q_3", "CE")] == (9.5, "core.engine.seq.state_LUT4_Z")
    sync = timing.endpoint_arrivals(REPORT, "$glbnet$clk")
    assert set(sync) == {("core.ctl.$signal$83_TRELLIS_FF_Q_2", "DI"), ("core.ctl.r_TRELLIS_FF_Q", "DI")}


def test_block_of():
    assert timing.block_of("core.engine.array.pe3_5.acc_TRELLIS_FF_Q_1") == ("core.engine.array.pe#_#", "acc")
    assert timing.block_of("core.ctl.$signal$83_TRELLIS_FF_Q_2") == ("core.ctl", "$signal$83")
    assert timing.block_of("core.g.cmd__storage.0.3$DPRAM_COMB2") == ("core.g.cmd__storage.#", "3")
    assert timing.block_of("top_cell") == ("", "top_cell")


def test_failing_by_block():
    arr = timing.endpoint_arrivals(REPORT, "gemm_clk")
    failing, total = timing.failing_by_block(arr, 8.0)
    assert failing == {"core.engine.seq": 3, "core.engine.array.pe#_#": 1}
    assert total == {"core.engine.seq": 3, "core.engine.array.pe#_#": 2}
    failing, _ = timing.failing_by_block(arr, 8.0, setup_ns=0.2)       # 7.9 + 0.2 fails too
    assert failing == {"core.engine.seq": 3, "core.engine.array.pe#_#": 1}
    failing, _ = timing.failing_by_block(arr, 8.4, setup_ns=0.2)     # 8.2 + 0.2 does not
    assert failing == {"core.engine.seq": 2, "core.engine.array.pe#_#": 1}
    failing, _ = timing.failing_by_block(arr, 9.0)
    assert failing == {"core.engine.seq": 2}


def test_cli(tmp_path, capsys):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(REPORT))
    assert timing.main([str(path), "--clock", "gemm_clk", "--mhz", "125"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "gemm_clk: 4 of 5 endpoints arrive after 8.00 ns (125 MHz)"
    assert "     3 /      3  core.engine.seq" in out
    assert "     1 /      2  core.engine.array.pe#_#" in out
    # The latest endpoint of each failing signal, latest first, with the last cell of its path.
    listed = [line.split()[2] for line in out.splitlines() if " ns  " in line]
    assert listed == ["core.engine.seq.beats_TRELLIS_FF_Q_3.CE", "core.engine.seq.err_TRELLIS_FF_Q.CE",
                      "core.engine.array.pe3_5.acc_TRELLIS_FF_Q_1.DI"]
    assert "<- core.engine.seq.state_LUT4_Z" in out


def test_cli_bad_input(tmp_path, capsys):
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"fmax": {}}))
    assert timing.main([str(plain), "--clock", "gemm_clk", "--mhz", "125"]) == 1
    assert "--detailed-timing-report" in capsys.readouterr().err
    full = tmp_path / "r.json"
    full.write_text(json.dumps(REPORT))
    assert timing.main([str(full), "--clock", "dec_clk", "--mhz", "125"]) == 1
    assert "no endpoint on clock 'dec_clk'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        timing.main([str(full), "--clock", "gemm_clk", "--mhz", "0"])
    assert e.value.code == 2
