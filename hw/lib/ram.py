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

__all__ = ["registered_read_port"]


def registered_read_port(m, memory, *, name):
    """A read port of ``memory`` (which should carry ``attrs={"no_rw_check": 1}``) in module ``m``
    with the cycle behaviour of ``memory.read_port()`` (domain ``sync``, not transparent): ``data``
    is the word at the ``addr`` of the cycle before, if ``en`` was high then (it holds otherwise).

    It is an asynchronous read port and a register (not reset, like a read port's data), which
    Yosys merges into the block RAM. Returns a namespace with the signals ``addr``, ``data`` and
    ``en`` (``en`` is 1 unless driven), named ``<name>_addr`` etc.
    """
    port = memory.read_port(domain="comb")
    addr = Signal.like(port.addr, name=f"{name}_addr")
    data = Signal(memory.shape, name=f"{name}_data", reset_less=True)
    en = Signal(init=1, name=f"{name}_en")
    m.d.comb += port.addr.eq(addr)
    with m.If(en):
        m.d.sync += data.eq(port.data)
    return SimpleNamespace(addr=addr, data=data, en=en)
