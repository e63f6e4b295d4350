"""Command group 3: the STDP synapse core (:class:`hw.stdp.STDPCore`) behind the controller.

Commands (payload formats; multi-byte fields little-endian; ``W = ceil(cfg_data_bits / 8)`` bytes
per memory word, reported by :func:`word_bytes`):

* ``LOAD_SYNAPSES`` (0x30): ``mem`` (1 byte, :data:`hw.stdp.spec.MEM_SYN` / ``MEM_ROW`` /
  ``MEM_BMP`` / ``MEM_STATE``), ``addr`` (3 bytes), then whole words of ``W`` bytes, written to
  ``addr``, ``addr + 1``, ... A payload that ends inside a word answers ``ERR_LENGTH`` (the
  complete words before it are written). Reply: empty.
* ``INJECT_SPIKES`` (0x31): one time step. Payload: the step's input events, 2 bytes (neuron
  index) each; the end-of-step marker is added by the handler. Reply: the step's output spikes,
  2 bytes each, ascending (the core's order). An odd payload length answers ``ERR_LENGTH`` without
  running the step.
* ``READ_WEIGHTS`` (0x33): ``mem`` (1), ``addr`` (3), ``count`` (2): reply ``count`` words of ``W``
  bytes read from ``addr`` on (weights, row table, bitmap or neuron states). Payload not 6 bytes:
  ``ERR_LENGTH``.

A command during which the core raises one of its sticky error flags (an event naming a neuron
beyond the network, an address beyond a memory) answers ``ERR_BLOCK``; the core keeps working, and
``error`` (hence ``STATUS.block_flags`` bit 3) stays set until the ``RESET`` command.
"""

from amaranth.hdl import Module, Signal

from ..stdp import STDPCore
from ..stdp.spec import STDPConfig
from .handler import Handler, capture_bytes, send_low_byte, start_command
from .protocol import Cmd, Status

__all__ = ["STDPHandler", "word_bytes"]


def word_bytes(cfg):
    """Bytes per memory word in the STDP commands for an :class:`hw.stdp.spec.STDPConfig`."""
    return -(-cfg.cfg_data_bits // 8)


class STDPHandler(Handler):
    """The STDP command group: byte-serial framing around :class:`hw.stdp.STDPCore`.

    Parameters
    ----------
    primitives : bool
        ``syn_store="spram"``: SPRAM primitives (``True``) or their behavioural models (simulators).
    **params
        :class:`hw.stdp.spec.STDPConfig` parameters of the core; a bad one raises the config's
        ``ValueError``.
    """

    def __init__(self, primitives=True, **params):
        self.cfg = STDPConfig(**params)
        self._params = params
        self._primitives = primitives
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = STDPCore(primitives=self._primitives, **self._params)
        bus = self.bus
        W = word_bytes(self.cfg)

        count = Signal(16)          # payload bytes taken
        mem = Signal(2)
        addr = Signal(24)
        word = Signal(8 * W)
        nbyte = Signal(range(W + 1))  # bytes of the current word collected / sent
        n_read = Signal(16)         # READ_WEIGHTS: words still to read
        lo = Signal(8)              # INJECT_SPIKES: low byte of the event being assembled
        half = Signal()
        err_before = Signal()
        status = Signal(8)
        spike = Signal(16)

        err_any = core.o_err.bad_event | core.o_err.bad_cfg
        m.d.comb += bus.error.eq(err_any)
        # Registered at the start and with each byte taken, so that the handshake's ready
        # depends on no compare: more payload (count != length, against length - 1 so that no
        # adder precedes it) and the command (READ_WEIGHTS with its fixed length).
        more = Signal()
        length_m1 = Signal(16)
        is_read = Signal()
        read_len_bad = Signal()
        take = bus.i_data.valid & bus.i_data.ready

        with m.FSM():
            with m.State("IDLE"):
                start_command(m, bus, status, [((Cmd.LOAD_SYNAPSES, Cmd.READ_WEIGHTS), "HEADER", None),
                                               ((Cmd.INJECT_SPIKES,), "EVENTS", None)],
                              on_start=[count.eq(0), nbyte.eq(0), half.eq(0), err_before.eq(err_any),
                                        status.eq(Status.OK), more.eq(bus.length != 0),
                                        length_m1.eq(bus.length - 1),
                                        is_read.eq(bus.cmd == Cmd.READ_WEIGHTS),
                                        read_len_bad.eq(bus.length != 6)])

            # mem, addr[0:8], addr[8:16], addr[16:24], then (READ only) count lo, hi.
            with m.State("HEADER"):
                header_len = 4
                with m.If(~more | (is_read & read_len_bad)):
                    m.d.sync += status.eq(Status.ERR_LENGTH)
                    m.next = "DONE"
                with m.Else():
                    m.d.comb += bus.i_data.ready.eq(1)
                with m.If(take):
                    m.d.sync += [count.eq(count + 1), more.eq(count != length_m1)]
                    capture_bytes(m, count, bus.i_data.payload,
                                  [[mem], *([addr[8 * i:8 * i + 8]] for i in range(3)), [n_read[:8]],
                                   [n_read[8:]]])
                    with m.If(~is_read & (count == header_len - 1)):
                        m.next = "LOAD"
                    with m.If(is_read & (count == 5)):
                        m.next = "READ"

            with m.State("LOAD"):
                with m.If(nbyte == W):
                    m.d.comb += [core.i_cfg.valid.eq(1), core.i_cfg.payload.write.eq(1),
                                 core.i_cfg.payload.mem.eq(mem), core.i_cfg.payload.addr.eq(addr),
                                 core.i_cfg.payload.data.eq(word)]
                    with m.If(core.i_cfg.ready):
                        m.d.sync += [nbyte.eq(0), addr.eq(addr + 1)]
                with m.Elif(~more):
                    with m.If(nbyte != 0):
                        m.d.sync += status.eq(Status.ERR_LENGTH)
                    m.next = "DONE"
                with m.Else():
                    m.d.comb += bus.i_data.ready.eq(1)
                    with m.If(take):
                        m.d.sync += [count.eq(count + 1), more.eq(count != length_m1), nbyte.eq(nbyte + 1),
                                     word.eq((word >> 8) | (bus.i_data.payload << (8 * W - 8)))]

            with m.State("READ"):
                with m.If(n_read == 0):
                    m.next = "DONE"
                with m.Else():
                    m.d.comb += [core.i_cfg.valid.eq(1), core.i_cfg.payload.write.eq(0),
                                 core.i_cfg.payload.mem.eq(mem), core.i_cfg.payload.addr.eq(addr)]
                    with m.If(core.i_cfg.ready):
                        m.d.sync += [addr.eq(addr + 1), n_read.eq(n_read - 1)]
                        m.next = "READ_WAIT"
            with m.State("READ_WAIT"):
                m.d.comb += core.o_rdata.ready.eq(1)
                with m.If(core.o_rdata.valid):
                    m.d.sync += [word.eq(core.o_rdata.payload), nbyte.eq(0)]
                    m.next = "READ_SEND"
            with m.State("READ_SEND"):
                with send_low_byte(m, bus, word, nbyte):
                    with m.If(nbyte == W - 1):
                        m.next = "READ"

            with m.State("EVENTS"):
                with m.If(bus.length[0]):
                    m.d.sync += status.eq(Status.ERR_LENGTH)
                    m.next = "DONE"
                with m.Elif(~more & ~half):
                    m.next = "EOS"
                with m.Elif(half):
                    m.d.comb += [core.i_aer.valid.eq(1), core.i_aer.payload.neuron.eq(lo | (spike << 8)),
                                 core.i_aer.payload.eos.eq(0)]
                    with m.If(core.i_aer.ready):
                        m.d.sync += half.eq(0)
                with m.Else():
                    m.d.comb += bus.i_data.ready.eq(1)
                    with m.If(take):
                        m.d.sync += [count.eq(count + 1), more.eq(count != length_m1)]
                        with m.If(count[0]):
                            m.d.sync += [spike.eq(bus.i_data.payload), half.eq(1)]
                        with m.Else():
                            m.d.sync += lo.eq(bus.i_data.payload)
            with m.State("EOS"):
                m.d.comb += [core.i_aer.valid.eq(1), core.i_aer.payload.eos.eq(1)]
                with m.If(core.i_aer.ready):
                    m.next = "SPIKES"
            with m.State("SPIKES"):
                m.d.comb += core.o_aer.ready.eq(1)
                with m.If(core.o_aer.valid):
                    with m.If(core.o_aer.payload.eos):
                        m.next = "DONE"
                    with m.Else():
                        m.d.sync += spike.eq(core.o_aer.payload.neuron)
                        m.next = "SPIKE_LO"
            with m.State("SPIKE_LO"):
                m.d.comb += [bus.o_data.valid.eq(1), bus.o_data.payload.eq(spike[:8])]
                with m.If(bus.o_data.ready):
                    m.next = "SPIKE_HI"
            with m.State("SPIKE_HI"):
                m.d.comb += [bus.o_data.valid.eq(1), bus.o_data.payload.eq(spike[8:])]
                with m.If(bus.o_data.ready):
                    m.next = "SPIKES"

            with m.State("DONE"):
                m.d.comb += bus.done.eq(1)
                with m.If((status == Status.OK) & err_any & ~err_before):
                    m.d.comb += bus.status.eq(Status.ERR_BLOCK)
                with m.Else():
                    m.d.comb += bus.status.eq(status)
                m.next = "IDLE"
        return m
