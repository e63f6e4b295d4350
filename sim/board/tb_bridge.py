"""cocotb side of the Verilator simulated board (:mod:`sim.board.verilator_board`).

One cocotb test, :func:`bridge`, serves the host over a Unix socket. The design is
:class:`sim.board.verilator_board.SimTop`: the core with the host's end of the UART line in
gateware, so the bridge hands over the host's bytes :data:`~sim.board.verilator_board.CHUNK` at a
time and reads the core's replies from a ring (the line itself is simulated at the bit level, at
the core's divisor). While the test waits for the host's next request it blocks in ``recv``, so
simulated time stands still while the host computes, as on a real board whose UART is idle.
Requests (one byte of opcode, little-endian fields):

* ``W`` len(4) data: queue bytes for the board's receive pin;
* ``R`` n(4) timeout(8): run until ``n`` bytes came from the board or ``timeout`` cycles passed;
* ``C`` cycles(8): run that many cycles;
* ``Q``: end the simulation.

Every request is answered with a status (1 byte: 0 ok, 1 error with the traceback as data), the cycle
count (8 bytes), a length (4) and the bytes read (``R``).
"""

import socket
import struct
import traceback

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Event, FallingEdge, First, RisingEdge, Timer
from cocotb.utils import get_sim_time

from sim.runner import tb_params

from .verilator_board import CHUNK

PERIOD_NS = 10
MASK32 = (1 << 32) - 1


def _recv_exact(conn, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


class _Line:
    """The host's end of the line: a send queue fed to ``SimTop``'s transmitter, received bytes
    taken from its ring."""

    def __init__(self, dut):
        self.dut = dut
        self.queue = bytearray()
        self.queued = Event()
        self.received = bytearray()
        self.taken = 0              # bytes of the ring taken (modulo 2**32, as o_recv_total)
        self.go = 0

    async def feed(self):
        """Hand the queue to the transmitter, a chunk at a time (runs while the simulation runs)."""
        dut = self.dut
        while True:
            while not self.queue:
                self.queued.clear()
                await self.queued.wait()
            chunk = bytes(self.queue[:CHUNK])
            del self.queue[:CHUNK]
            dut.i_send.value = int.from_bytes(chunk, "little")
            dut.i_send_len.value = len(chunk)
            self.go ^= 1
            dut.i_send_go.value = self.go
            await RisingEdge(dut.o_send_busy)
            await FallingEdge(dut.o_send_busy)

    def drain(self):
        """Take the ring's new bytes."""
        total = int(self.dut.o_recv_total.value)
        new = (total - self.taken) & MASK32
        if new > CHUNK:
            raise RuntimeError(f"the bridge lost {new - CHUNK} bytes from the board (ring overrun)")
        if new:
            ring = int(self.dut.o_recv_ring.value).to_bytes(CHUNK, "little")
            self.received += bytes(ring[(self.taken + i) % CHUNK] for i in range(new))
            self.taken = total

    async def run(self, deadline, cycles, want=None):
        """Run until ``cycles()`` reaches ``deadline`` or (``want``) that many bytes are received."""
        dut = self.dut
        while True:
            self.drain()
            if (want is not None and len(self.received) >= want) or cycles() >= deadline:
                return
            ahead = CHUNK // 2 if want is None else min(CHUNK // 2, want - len(self.received))
            dut.i_recv_until.value = (self.taken + ahead) & MASK32
            await First(RisingEdge(dut.o_recv_ready), Timer((deadline - cycles()) * PERIOD_NS, unit="ns"))


@cocotb.test()
async def bridge(dut):
    p = tb_params()
    # The clock toggles in the simulator (GPI), not in a Python coroutine: about 30x faster.
    Clock(dut.clk, PERIOD_NS, unit="ns", impl="gpi").start()
    for domain, period_ps in p.get("clocks", {}).items():
        Clock(getattr(dut, f"clk_{domain}"), period_ps, unit="ps", impl="gpi").start()
    dut.i_send_go.value = 0
    dut.i_send_len.value = 0
    dut.i_send.value = 0
    dut.i_recv_until.value = 1
    # The design makes its own power-on reset (SimTop).
    await ClockCycles(dut.clk, 4)
    line = _Line(dut)
    cocotb.start_soon(line.feed())
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(p["socket"])

    def cycles():
        return int(get_sim_time("ns")) // PERIOD_NS

    def answer(data=b"", status=0):
        conn.sendall(struct.pack("<BQI", status, cycles(), len(data)) + bytes(data))

    # The test itself never fails: an error goes to the host (status 1, the message as data), so
    # that sim.runner does not rebuild the design with tracing to re-run a failed bridge.
    try:
        await _serve(conn, line, cycles, answer)
    except Exception as e:  # noqa: BLE001 - reported to the host
        try:
            answer(traceback.format_exc().encode()[-4000:] or repr(e).encode(), status=1)
        except OSError:
            pass
    conn.close()


async def _serve(conn, line, cycles, answer):
    while True:
        op = _recv_exact(conn, 1)
        if op is None or op == b"Q":
            answer()
            break
        if op == b"W":
            (n,) = struct.unpack("<I", _recv_exact(conn, 4))
            line.queue += _recv_exact(conn, n)
            line.queued.set()
            answer()
        elif op == b"C":
            (n,) = struct.unpack("<Q", _recv_exact(conn, 8))
            if n:
                await line.run(cycles() + n, cycles)
            answer()
        elif op == b"R":
            n, timeout = struct.unpack("<IQ", _recv_exact(conn, 12))
            await line.run(cycles() + timeout, cycles, want=n)
            got = bytes(line.received[:n])
            del line.received[:n]
            answer(got)
        else:
            raise ValueError(f"unknown bridge request {op!r}")
