"""Block-RAM read ports without read-during-write emulation.

A synchronous read port of an ``amaranth.lib.memory.Memory`` reaches Yosys as a clocked
``$memrd``, and Yosys then keeps its semantics for a read of an address written in the same cycle
(old data) with an address compare and a bypass register per port, because iCE40 / ECP5 block RAM
leaves that case undefined. The memory's ``no_rw_check`` attribute waives that only while Yosys
merges an output register into an asynchronous read (``memory_dff``), so for a memory whose user
never reads an address in the cycle it is written, :func:`registered_read_port` builds the port
that way.
"""

from types import SimpleNamespace

from amaranth.hdl import Signal

__all__ = ["registered_read_port", "UNDEFINED_INIT"]

#: Yosys command (run before synthesis: ``boards.build``, ``boards.synth``): no initial value for
#: the wires with the ``undefined_init`` attribute (:func:`registered_read_port`'s data), as
#: Amaranth gives its own read ports (``INIT_VALUE`` x). With an initial value Yosys emulates it
#: on iCE40 block RAM: a flip-flop set after the first cycle and a LUT gating every read bit
#: (about 100 logic cells and a LUT level on every path from a read in the iCEBreaker's GEMM
#: build).
UNDEFINED_INIT = "setattr -unset init a:undefined_init"


def registered_read_port(m, memory, *, name):
    """A read port of ``memory`` (which should carry ``attrs={"no_rw_check": 1}``) in module ``m``
    with the cycle behaviour of ``memory.read_port()`` (domain ``sync``, not transparent): ``data``
    is the word at the ``addr`` of the cycle before, if ``en`` was high then (it holds otherwise).

    It is an asynchronous read port and a register (not reset, like a read port's data), which
    Yosys merges into the block RAM. In synthesis (with :data:`UNDEFINED_INIT`) the register has no
    initial value, as a read port's data: ``data`` before the first read is undefined in hardware
    (0 in simulation). Returns a namespace with the signals ``addr``, ``data`` and
    ``en`` (``en`` is 1 unless driven), named ``<name>_addr`` etc.
    """
    port = memory.read_port(domain="comb")
    addr = Signal.like(port.addr, name=f"{name}_addr")
    data = Signal(memory.shape, name=f"{name}_data", reset_less=True, attrs={"undefined_init": 1})
    en = Signal(init=1, name=f"{name}_en")
    m.d.comb += port.addr.eq(addr)
    with m.If(en):
        m.d.sync += data.eq(port.data)
    return SimpleNamespace(addr=addr, data=data, en=en)
