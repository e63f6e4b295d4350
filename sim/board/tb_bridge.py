"""cocotb side of the Verilator simulated board (:mod:`sim.board.verilator_board`).

One cocotb test, :func:`bridge`, serves the host over a Unix socket: the host's bytes go to the
core's receive pin through ``cocotbext-uart``'s :class:`UartSource`, the core's transmit pin is
decoded by :class:`UartSink`. While the test waits for the host's next request it blocks in
``recv``, so simulated time stands still while the host computes, as on a real board whose UART is
idle. Requests (one byte of opcode, little-endian fields):

* ``W`` len(4) data: queue bytes for the board's receive pin;
* ``R`` n(4) timeout(8): run until ``n`` bytes came from the board or ``timeout`` cycles passed;
* ``C`` cycles(8): run that many cycles;
* ``Q``: end the simulation.

Every request is answered with a status (1 byte: 0 ok, 1 error with the traceback as data), the cycle
count (8 bytes), a length (4) and the bytes read (``R``).
"""

import logging
import socket
import struct
import traceback
import warnings

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Timer
from cocotb.utils import get_sim_time
from cocotbext.uart import UartSink, UartSource

from sim.runner import tb_params

PERIOD_NS = 10

# cocotbext-uart 0.1.4 still uses cocotb 1.x calls that cocotb 2 deprecates; they work.
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"cocotbext\.uart")


def _recv_exact(conn, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


@cocotb.test()
async def bridge(dut):
    p = tb_params()
    baud = 1e9 / (PERIOD_NS * p["divisor"])
    # The clock toggles in the simulator (GPI), not in a Python coroutine: about 30x faster.
    Clock(dut.clk, PERIOD_NS, unit="ns", impl="gpi").start()
    dut.i_rx.value = 1
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    source = UartSource(dut.i_rx, baud=baud, bits=8)
    sink = UartSink(dut.o_tx, baud=baud, bits=8)
    for end in (source, sink):
        end.log.setLevel(logging.WARNING)   # no line per byte
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(p["socket"])

    def cycles():
        return int(get_sim_time("ns")) // PERIOD_NS

    def answer(data=b"", status=0):
        conn.sendall(struct.pack("<BQI", status, cycles(), len(data)) + bytes(data))

    # The test itself never fails: an error goes to the host (status 1, the message as data), so
    # that sim.runner does not rebuild the design with tracing to re-run a failed bridge.
    try:
        await _serve(conn, source, sink, cycles, answer)
    except Exception as e:  # noqa: BLE001 - reported to the host
        try:
            answer(traceback.format_exc().encode()[-4000:] or repr(e).encode(), status=1)
        except OSError:
            pass
    conn.close()


async def _serve(conn, source, sink, cycles, answer):
    while True:
        op = _recv_exact(conn, 1)
        if op is None or op == b"Q":
            answer()
            break
        if op == b"W":
            (n,) = struct.unpack("<I", _recv_exact(conn, 4))
            source.write_nowait(_recv_exact(conn, n))
            answer()
        elif op == b"C":
            (n,) = struct.unpack("<Q", _recv_exact(conn, 8))
            if n:
                await Timer(n * PERIOD_NS, unit="ns")
            answer()
        elif op == b"R":
            n, timeout = struct.unpack("<IQ", _recv_exact(conn, 12))
            deadline = cycles() + timeout
            got = bytearray()
            while True:
                # Empty the sink before waiting: its wait() returns at once while it holds bytes.
                got += sink.read_nowait(min(n - len(got), sink.count()))
                if len(got) >= n or cycles() >= deadline:
                    break
                await sink.wait(timeout=(deadline - cycles()) * PERIOD_NS, timeout_unit="ns")
            answer(got)
        else:
            raise ValueError(f"unknown bridge request {op!r}")
