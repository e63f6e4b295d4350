"""Host side: jobs API, transports, driver errors (the simulated board stands in for hardware)."""

import pytest

from firmware.driver import Driver, LinkError
from firmware.jobs import JOBS, run_job
from firmware.transport import SimTransport, open_transport
from hw.control import protocol as P


def test_unknown_job_and_board():
    with pytest.raises(ValueError, match="job must be one of status, gemm, mlp, hdqt, snn"):
        run_job("nosuchjob")
    with pytest.raises(ValueError, match="board must be one of icebreaker, ulx3s, not 'de10'"):
        open_transport("de10")
    assert all(isinstance(v, str) and v for v in JOBS.values())


def test_status_job_on_simulated_board():
    rows = dict(run_job("status"))
    assert rows["target"].startswith("simulated board")
    assert rows["PING 64 B"] == "ok"
    assert rows["SINK 512 B"].startswith("ok")
    assert "stdp" in rows["command groups"]
    assert rows["link errors"] == "flags=0x00"
    assert rows["command errors"].startswith("flags=0x")


def test_reply_timeout_when_nothing_answers():
    class Silent:
        name = "silent"

        def write(self, data):
            pass

        def read(self, n, timeout=1.0):
            return b""

        def close(self):
            pass

    with pytest.raises(LinkError, match="STATUS failed after 3 attempts on silent: no valid reply"):
        Driver(Silent(), timeout=0.01).status()


def test_command_larger_than_max_payload_is_refused_by_board():
    drv = Driver(SimTransport())
    status, payload = drv.command(P.Cmd.SINK, bytes(P.MAX_PAYLOAD + 1), check=False)
    assert (status, payload) == (P.Status.ERR_OVERSIZE, b"")
    assert drv.sink(b"abc") == (3, sum(b"abc"))


@pytest.mark.slow
@pytest.mark.parametrize("job", ["gemm", "mlp", "hdqt", "snn"])
def test_job_matches_golden_on_simulated_board(job):
    rows = dict(run_job(job))
    assert rows["board == golden"] == "yes", rows
