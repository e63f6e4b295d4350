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

from types import SimpleNamespace

from amaranth.hdl import Module, Mux, Signal

from ..stdp import STDPCore
from ..stdp.spec import STDPConfig
from .handler import Handler, send_low_byte
from .onehot import OneHotFSM
from .protocol import Cmd, Status

__all__ = ["STDPHandler", "word_bytes"]


def word_bytes(cfg):
    """Bytes per memory word in the STDP commands for an :class:`hw.stdp.spec.STDPConfig`."""
    return -(-cfg.cfg_data_bits // 8)


class STDPHandler(Handler):
    """The STDP command group: byte-serial framing around :class:`hw.stdp.STDPCore`.

    Cycle behaviour: one-hot states (:class:`hw.control.onehot.OneHotFSM`); the command (and
    whether its payload length is possible) is decoded in the cycle after ``start``; one payload
    byte per cycle at most; each word or event is offered to the core from a valid flip-flop and the next
    one is assembled from the cycle after the transfer (about 3 cycles per event or word beyond
    the core's own); output spikes are taken through a registered ready (2 reply bytes each).
    ``done`` pulses 5 cycles after the core's inputs are empty, so the core's address check of
    the last word has set its error flag by then.

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

    _STATES = ("IDLE", "DISPATCH", "HEADER", "LOAD", "READ_COUNT", "READ", "READ_WAIT", "READ_SEND", "EVENTS",
               "EOS", "REFUSED", "HEADER_END", "LOAD_END",
               "SPIKES", "SPIKE_LO", "SPIKE_HI", "SETTLE", "DONE")

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = STDPCore(primitives=self._primitives, **self._params)
        bus = self.bus
        W = word_bytes(self.cfg)

        mem = Signal(2)
        addr = Signal(24)
        # LOAD: the word assembled for the core (its i_cfg data). READ_SEND: the word read back,
        # sent a byte at a time; a register of its own, so the load word's enable and input select
        # do not carry the read's states too. Neither is reset (they are used only under a valid
        # flip-flop that is), so the reset stays out of their enables.
        word = Signal(8 * W, reset_less=True)
        rword = Signal(8 * W, reset_less=True)
        nbyte = Signal(range(W + 1))  # bytes of the current word collected / sent
        n_read = Signal(16)         # READ_WEIGHTS: words still to read
        lo = Signal(8)              # INJECT_SPIKES: low byte of the event being assembled
        half = Signal()             # INJECT_SPIKES: an event is assembled (waiting for the core)
        err_before = Signal()
        status = Signal(8)
        final_status = Signal(8)
        spike = Signal(16)

        err_any = core.o_err.bad_event | core.o_err.bad_cfg
        m.d.comb += bus.error.eq(err_any)
        # Registered decisions: every compare of a counter is made a byte ahead (or at the start),
        # so the state bits and the handshakes depend on flip-flops only.
        more = Signal()             # payload bytes left (count != length, against length - 1)
        count = Signal(16)          # payload bytes taken
        length_m1, length_m2 = Signal(16), Signal(16)
        # more's next value is chosen, not compared, behind a byte taken: at_m1 / at_m2 are
        # count == length - 1 / length - 2 of the cycle before (registered in every cycle) and
        # `took` says whether that cycle took a byte, so count == length - 1 now is
        # Mux(took, at_m2, at_m1). count is 0 from IDLE on, so both are fresh after DISPATCH.
        at_m1, at_m2, took = Signal(), Signal(), Signal()
        last_now = Mux(took, at_m2, at_m1)
        is_read = Signal()
        is_load, is_inject = Signal(), Signal()
        len_bad = Signal()          # a payload length the command cannot have (READ: not 6; INJECT: odd)
        hdr = Signal(6)             # one-hot: header byte taken next (mem, addr x3, count x2)
        word_full = Signal()        # LOAD: nbyte == W
        word_part = Signal()        # LOAD: nbyte != 0
        read_done = Signal()        # READ: n_read == 0 (registered in every cycle; READ_COUNT lets
                                    # it follow the count's last header byte)
        last_byte = Signal()        # READ_SEND: nbyte == W - 1
        settle = Signal(2)          # SETTLE: cycles since the core's inputs were empty
        # The handshakes with the core are registers too: `cfg_valid`/`aer_valid` are raised by a
        # state and cleared by the transfer, and a transfer's consequences (next address, next
        # state) follow one cycle later from `cfg_sent`/`aer_sent`, so the core's ready (a
        # function of its phase and busy flags) drives four flip-flops and no wide enable.
        cfg_valid, cfg_sent = Signal(), Signal()
        aer_valid, aer_sent, aer_eos = Signal(), Signal(), Signal()
        cfg_take = cfg_valid & core.i_cfg.ready
        aer_take = aer_valid & core.i_aer.ready
        m.d.comb += [core.i_cfg.valid.eq(cfg_valid), core.i_cfg.payload.write.eq(~is_read),
                     core.i_cfg.payload.mem.eq(mem), core.i_cfg.payload.addr.eq(addr),
                     core.i_cfg.payload.data.eq(word),
                     core.i_aer.valid.eq(aer_valid), core.i_aer.payload.neuron.eq(lo | (spike << 8)),
                     core.i_aer.payload.eos.eq(aer_eos)]
        out_ready, out_got, out_eos = Signal(), Signal(), Signal()
        out_take = core.o_aer.valid & out_ready
        m.d.comb += core.o_aer.ready.eq(out_ready)
        m.d.sync += [cfg_sent.eq(cfg_take), aer_sent.eq(aer_take), out_got.eq(out_take)]
        with m.If(out_take):
            m.d.sync += out_ready.eq(0)
        with m.If(out_ready):
            m.d.sync += [spike.eq(core.o_aer.payload.neuron), out_eos.eq(core.o_aer.payload.eos)]
        with m.If(cfg_take):
            m.d.sync += cfg_valid.eq(0)
        with m.If(aer_take):
            m.d.sync += aer_valid.eq(0)

        fsm = OneHotFSM(m, self._STATES, prefix="stdp")
        goto = fsm.goto
        with fsm.state("IDLE"):
            # Only what the start brings (the command, its length, the error flags then) is
            # registered with it; the rest starts in DISPATCH, so the start (a wide fan-out from
            # the controller) reaches few flip-flops' enables and none of their data.
            m.d.sync += count.eq(0)
            with m.If(bus.start):
                m.d.sync += [err_before.eq(err_any), length_m1.eq(bus.length - 1),
                             length_m2.eq(bus.length - 2),
                             is_read.eq(bus.cmd == Cmd.READ_WEIGHTS),
                             is_load.eq(bus.cmd == Cmd.LOAD_SYNAPSES),
                             is_inject.eq(bus.cmd == Cmd.INJECT_SPIKES),
                             len_bad.eq(Mux(bus.cmd == Cmd.READ_WEIGHTS, bus.length != 6, bus.length[0]))]
                goto("DISPATCH")
        with fsm.state("DISPATCH"):
            # The command's decode is registered at the start. A payload length the command cannot
            # have is refused here, before any byte is taken, so the byte-taking states need not
            # check it.
            m.d.sync += [nbyte.eq(0), half.eq(0), status.eq(Status.OK), hdr.eq(1),
                         more.eq(length_m1 != 0xFFFF),   # length != 0 (no state before HEADER reads it)
                         word_full.eq(0), word_part.eq(0), aer_eos.eq(0), settle.eq(0)]
            with m.If(~(is_load | is_read | is_inject)):
                m.d.sync += status.eq(Status.ERR_UNKNOWN_CMD)
                goto("REFUSED")
            with m.Elif(len_bad & ~is_load):
                m.d.sync += status.eq(Status.ERR_LENGTH)
                goto("REFUSED")
            with m.Elif(is_inject):
                goto("EVENTS")
            with m.Else():
                goto("HEADER")

        # The payload is taken in HEADER, in LOAD while no word is waiting for the core (in LOAD,
        # cfg_sent implies word_full: the word is offered from word_full on, and its transfer is
        # seen as cfg_sent before word_full is cleared) and in EVENTS while no event is. One flat
        # OR of flip-flops: it drives the enables of the payload's skid buffer (in HandlerMux).
        in_ready = more & (fsm.bit("HEADER") | (fsm.bit("LOAD") & ~word_full) | (fsm.bit("EVENTS") & ~half))
        m.d.comb += bus.i_data.ready.eq(in_ready)
        m.d.sync += [at_m1.eq(count == length_m1), at_m2.eq(count == length_m2),
                     took.eq(bus.i_data.valid & in_ready)]
        take = bus.i_data.valid & more
        v = SimpleNamespace(**locals())
        self._header(m, fsm, bus, v)
        self._load_read(m, fsm, bus, core, W, v)
        self._inject(m, fsm, bus, core, v)

        # DISPATCH, HEADER and LOAD leave for SETTLE through a state of their own (a cycle), so the
        # SETTLE bit is an OR of flip-flops and two short conditions, not of every leaving
        # decision.
        for state in ("REFUSED", "HEADER_END", "LOAD_END"):
            with fsm.state(state):
                goto("SETTLE")
        with fsm.state("SETTLE"):
            # The core checks a write's address two cycles after taking it; its error flag is
            # read once its input registers have been empty for three cycles.
            with m.If(cfg_valid | aer_valid):
                m.d.sync += settle.eq(0)
            with m.Elif(settle != 3):
                m.d.sync += settle.eq(settle + 1)
            with m.Else():
                with m.If((status == Status.OK) & err_any & ~err_before):
                    m.d.sync += final_status.eq(Status.ERR_BLOCK)
                with m.Else():
                    m.d.sync += final_status.eq(status)
                goto("DONE")
        with fsm.state("DONE"):
            m.d.comb += [bus.done.eq(1), bus.status.eq(final_status)]
            goto("IDLE")
        return m

    @staticmethod
    def _header(m, fsm, bus, v):
        """``HEADER``: mem, addr[0:8], addr[8:16], addr[16:24], then (READ only) count lo, hi."""
        goto, more, is_read, hdr, status = v.goto, v.more, v.is_read, v.hdr, v.status
        with fsm.state("HEADER"):
            with m.If(~more):
                m.d.sync += status.eq(Status.ERR_LENGTH)
                goto("HEADER_END")
            with m.Else():
                # Ready (in_ready) is 1 in this branch, so a byte is taken when it is valid: the
                # skid buffer's registered valid, not the ready decode, leads to the state bits.
                with m.If(bus.i_data.valid):
                    byte = bus.i_data.payload
                    m.d.sync += [v.count.eq(v.count + 1), more.eq(~v.last_now), hdr.eq(hdr << 1)]
                    dests = [v.mem, *(v.addr[8 * i:8 * i + 8] for i in range(3)), v.n_read[:8], v.n_read[8:]]
                    for i, dest in enumerate(dests):
                        with m.If(hdr[i]):
                            m.d.sync += dest.eq(byte)
                    with m.If(~is_read & hdr[3]):
                        goto("LOAD")
                    with m.If(is_read & hdr[5]):
                        goto("READ_COUNT")

    @staticmethod
    def _load_read(m, fsm, bus, core, W, v):
        """``LOAD`` (whole words to the core) and ``READ`` / ``READ_WAIT`` / ``READ_SEND``."""
        goto, more, status, addr, word, nbyte = v.goto, v.more, v.status, v.addr, v.word, v.nbyte
        cfg_valid, cfg_sent = v.cfg_valid, v.cfg_sent
        word_full, word_part, n_read, read_done = v.word_full, v.word_part, v.n_read, v.read_done
        last_byte = v.last_byte
        with fsm.state("LOAD"):
            # A byte is taken (in_ready) apart from the word's handshake below: cfg_sent implies
            # word_full, so the two never act in the same cycle, and the word register's enable
            # is a function of four flip-flops.
            with m.If(~word_full & v.take):
                m.d.sync += [v.count.eq(v.count + 1), more.eq(~v.last_now),
                             nbyte.eq(nbyte + 1), word_full.eq(nbyte == W - 1), word_part.eq(1),
                             word.eq((word >> 8) | (bus.i_data.payload << (8 * W - 8)))]
            with m.If(cfg_sent):
                m.d.sync += [addr.eq(addr + 1), nbyte.eq(0), word_full.eq(0), word_part.eq(0)]
            with m.Elif(word_full):
                with m.If(~cfg_valid):
                    m.d.sync += cfg_valid.eq(1)
            with m.Elif(~more):
                with m.If(word_part):
                    m.d.sync += status.eq(Status.ERR_LENGTH)
                goto("LOAD_END")

        m.d.sync += read_done.eq(n_read == 0)
        with fsm.state("READ_COUNT"):
            goto("READ")
        with fsm.state("READ"):
            with m.If(read_done):
                goto("SETTLE")
            with m.Elif(~cfg_valid):
                m.d.sync += cfg_valid.eq(1)
                goto("READ_WAIT")
        with fsm.state("READ_WAIT"):
            with m.If(cfg_sent):
                m.d.sync += [addr.eq(addr + 1), n_read.eq(n_read - 1)]
            m.d.comb += core.o_rdata.ready.eq(1)
            with m.If(core.o_rdata.valid):
                m.d.sync += [v.rword.eq(core.o_rdata.payload), nbyte.eq(0), last_byte.eq(W == 1)]
                goto("READ_SEND")
        with fsm.state("READ_SEND"):
            with send_low_byte(m, bus, v.rword, nbyte):
                m.d.sync += last_byte.eq(nbyte == W - 2)
                with m.If(last_byte):
                    goto("READ")

    @staticmethod
    def _inject(m, fsm, bus, core, v):
        """``EVENTS`` (2 payload bytes per event to the core), ``EOS``, then the output spikes."""
        goto, more, half, lo, spike = v.goto, v.more, v.half, v.lo, v.spike
        aer_valid, aer_sent, aer_eos = v.aer_valid, v.aer_sent, v.aer_eos
        out_ready, out_got, out_eos = v.out_ready, v.out_got, v.out_eos
        with fsm.state("EVENTS"):
            with m.If(half):
                # the assembled event is offered (aer_valid) until the core has taken it
                with m.If(aer_sent):
                    m.d.sync += half.eq(0)
                with m.Elif(~aer_valid):
                    m.d.sync += aer_valid.eq(1)
            with m.Elif(~more):
                m.d.sync += [aer_valid.eq(1), aer_eos.eq(1)]
                goto("EOS")
            with m.Elif(bus.i_data.valid):   # in_ready is 1 here
                m.d.sync += [v.count.eq(v.count + 1), more.eq(~v.last_now)]
                with m.If(v.count[0]):
                    m.d.sync += [spike.eq(bus.i_data.payload), half.eq(1)]
                with m.Else():
                    m.d.sync += lo.eq(bus.i_data.payload)
        with fsm.state("EOS"):
            with m.If(aer_sent):
                m.d.sync += out_ready.eq(1)
                goto("SPIKES")
        with fsm.state("SPIKES"):
            # The core's output is taken through registers: `out_ready` (raised on entering this
            # state, cleared by the transfer), the event captured while it is set and `out_got`
            # (the transfer, seen a cycle later), so the core's valid drives two flip-flops only.
            with m.If(out_got):
                with m.If(out_eos):
                    goto("SETTLE")
                with m.Else():
                    goto("SPIKE_LO")
        with fsm.state("SPIKE_LO"):
            m.d.comb += [bus.o_data.valid.eq(1), bus.o_data.payload.eq(spike[:8])]
            with m.If(bus.o_data.ready):
                goto("SPIKE_HI")
        with fsm.state("SPIKE_HI"):
            m.d.comb += [bus.o_data.valid.eq(1), bus.o_data.payload.eq(spike[8:])]
            with m.If(bus.o_data.ready):
                m.d.sync += out_ready.eq(1)
                goto("SPIKES")
