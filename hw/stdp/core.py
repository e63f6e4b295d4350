"""The STDP core: synapse memory, neuron-state memory, LIF sweep and pipelined STDP row walks."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..lib.ram import registered_read_port
from ..lib.sections import elaborate_sections
from ..lib.spram import InterleavedSPRAM
from ..params import check_bool
from . import spec, sweep
from .config_port import ConfigPort, cfg_layout
from .pipeline import UpdatePipeline
from .walker import RowWalker

__all__ = ["STDPCore", "AER_LAYOUT", "ERROR_LAYOUT", "cfg_layout", "PHASE_INPUT", "PHASE_SWEEP",
           "PHASE_WALK", "PHASE_EOS"]

#: AER event: a neuron index and the end-of-step marker flag.
AER_LAYOUT = data.StructLayout({"neuron": spec.AER_BITS, "eos": 1})
#: Sticky error flags.
ERROR_LAYOUT = data.StructLayout({"bad_event": 1, "bad_cfg": 1})

PHASE_INPUT, PHASE_SWEEP, PHASE_WALK, PHASE_EOS = range(4)


class _Port:
    """A memory port's signals (``addr``, ``data``, ``en``) for a store that is not a ``Memory``."""

    def __init__(self, **signals):
        self.__dict__.update(signals)


def goto(phase, one_hot, p):
    """Statements that move the core to phase ``p`` (the phase number and its one-hot copy)."""
    return [phase.eq(p), one_hot.eq(1 << p)]


class STDPCore(wiring.Component):
    """Forward-table, presynaptic-event-triggered STDP on a network of LIF neurons.

    The arithmetic, the order of events in a time step and the memory layouts are those of
    :mod:`hw.stdp.spec`; :class:`sim.stdp.golden.ForwardSTDPNetwork` is the bit-exact model.

    A time step runs in four phases (``o_phase``):

    * ``PHASE_INPUT``: AER input events are accepted, one per cycle (each sets the neuron's input
      bit; an index ``>= n_neurons`` sets ``o_err.bad_event`` and is dropped), until the
      end-of-step marker (``eos = 1``). Configuration commands are served in this phase only, one
      every 3 cycles (a read: until ``o_rdata`` is taken); they take priority over events.
    * ``PHASE_SWEEP``: one neuron per cycle (``n_neurons + 4`` cycles): LIF update, timer, and the
      neurons that spike or owe a causal walk are queued.
    * ``PHASE_WALK``: the queued rows are walked; a 7-stage pipeline does one synapse
      read-modify-write per cycle (read weight; register it; read post state and input
      accumulator; register them; add into the accumulator, read kernel tables; write the
      accumulator, LTP; LTD and write the weight). Rows are prefetched (pointer read and
      register, then a ready slot), so with the CSR and crossbar encodings consecutive rows of
      three or more synapses follow without a bubble (shorter rows cost up to three cycles); the
      bitmap encoding reads its bitmap words one ahead of the issuer: a word costs max(set bits,
      2) cycles, a row start about 3. A spiking neuron's output event is offered on ``o_aer``
      when its row is taken from the queue; the walk waits while ``o_aer`` is not ready.
    * ``PHASE_EOS``: the end-of-step marker is offered on ``o_aer``; then back to ``PHASE_INPUT``.

    Reset: for ``n_neurons`` cycles after reset (power-up, or the controller's ``RESET`` command,
    which resets the core's registers) the core writes every neuron's reset state and clears its
    input accumulator and input bit, and accepts nothing meanwhile; so after a ``RESET`` the network
    continues from the state of a freshly configured board, including the weights delivered ahead
    to the next step. Synapse, row and bitmap memories (the host's configuration) are kept.

    Hazards: the accumulator of a post is read-modify-written by every row that contains it, also in
    consecutive cycles (row ends / starts); it is read three stages before it is written, and the
    three updates that can be in flight are forwarded (from the adder and from two registers), so
    back-to-back updates of the same post never lose one. The weight memory needs no forwarding:
    a synapse is walked at most once per step, and steps are separated by the ``n_neurons``-cycle
    sweep. No read uses the data of a same-cycle write to its address, so the memories carry the
    ``no_rw_check`` attribute (no read-during-write emulation logic).

    Memories: every memory has one read and one write port (the read-modify-write pipeline reads
    one synapse and writes another in the same cycle), which maps to iCE40 / ECP5 block RAM. In
    block RAM the UP5K holds at most 256 neurons with 7168 synapses (4-bit weights).

    ``syn_store="spram"`` puts the synapse memory in the UP5K's single-port SPRAMs instead
    (:class:`hw.lib.spram.InterleavedSPRAM`: even synapse addresses in one bank, odd in the other;
    up to 65536 synapses of 16 bits). The write-back is registered once more, so it trails its read
    by 7 cycles, an odd number: along a row, reads and write-backs alternate banks and never meet.
    When a row's first synapse has the bank the write-back is using, the issuer waits a cycle
    (and again while they meet), so rows cost at most a few cycles more than in block RAM.

    Structure: the core holds the memories, the walk queue, the phase and the error flags, and
    multiplexes the memory ports between its components: :class:`hw.stdp.sweep.ResetSweep`,
    :class:`hw.stdp.sweep.NeuronSweep`, :class:`hw.stdp.config_port.ConfigPort`,
    :class:`hw.stdp.walker.RowWalker` and :class:`hw.stdp.pipeline.UpdatePipeline`; the event
    input, the walk queue's pointers and the phase are its own.

    Parameters
    ----------
    See :class:`hw.stdp.spec.STDPConfig` (same names and ranges), and
    primitives : bool
        ``syn_store="spram"`` only: ``True`` instantiates ``SB_SPRAM256KA`` (synthesis), ``False``
        their behavioural models (:class:`hw.lib.spram.SPRAMCell`, for simulators).

    Members
    -------
    i_aer : In(stream.Signature(AER_LAYOUT))
        Presynaptic (input) events of the current step, then the end-of-step marker.
    o_aer : Out(stream.Signature(AER_LAYOUT))
        Spikes of each step in ascending neuron order, then its end-of-step marker.
    i_cfg : In(stream.Signature(cfg_layout(cfg_data_bits)))
        Memory load / read-back commands (:mod:`hw.stdp.spec`, "Streams").
    o_rdata : Out(stream.Signature(cfg_data_bits))
        One word per read command (0 for an invalid address).
    o_err : Out(ERROR_LAYOUT)
        Sticky error flags; ``i_err_clear`` clears them. The core keeps running.
    i_err_clear : In(1)
    o_phase : Out(2)
        Current phase (for status and cycle accounting).

    Raises
    ------
    ValueError
        If a parameter is out of range (see :class:`hw.stdp.spec.STDPConfig`).
    """

    def __init__(self, primitives=True, **params):
        self.cfg = spec.STDPConfig(**params)
        self._primitives = check_bool("primitives", primitives)
        c = self.cfg
        super().__init__({
            "i_aer": In(stream.Signature(AER_LAYOUT)),
            "o_aer": Out(stream.Signature(AER_LAYOUT)),
            "i_cfg": In(stream.Signature(cfg_layout(c.cfg_data_bits))),
            "o_rdata": Out(stream.Signature(c.cfg_data_bits)),
            "o_err": Out(ERROR_LAYOUT),
            "i_err_clear": In(1),
            "o_phase": Out(2),
        })

    def elaborate(self, platform):
        return elaborate_sections(
            Module(),
            self._build_memories,
            self._build_input,
            self._build_sweep,
            self._build_walk_issue,
            self._build_walk_pipeline,
            self._build_config_port,
            self._build_reset_sweep,
        )

    def _build_memories(self, m, ns):
        """Memories and their ports, the walk queue, the phase (number and one-hot), the error flags."""
        c = self.cfg
        N, nb, vb, pb = c.n_neurons, c.neuron_bits, c.v_bits, c.ptr_bits
        csr, bitmap, crossbar = c.encoding == "csr", c.encoding == "bitmap", c.encoding == "crossbar"

        entry_layout = sweep.entry_layout(c)

        # Memories (all one read + one write port: iCE40 / ECP5 block RAM friendly). No read ever
        # uses the data of a same-cycle write to its address (the accumulator forwards that case
        # from a register), so the synthesizer is told not to emulate read-during-write behaviour.
        rw = {"no_rw_check": 1}
        m.submodules.state = state = Memory(shape=c.state_bits, depth=N,
                                            init=[spec.pack_state(c, spec.reset_state(c))] * N, attrs=rw)
        m.submodules.acc = acc = Memory(shape=vb, depth=N, init=[], attrs=rw)
        m.submodules.ext = ext = Memory(shape=1, depth=N, init=[], attrs=rw)
        spram = c.syn_store == "spram"
        if not spram:
            m.submodules.syn = syn = Memory(shape=c.syn_bits, depth=c.syn_depth, init=[], attrs=rw)
        st_rd, st_wr = registered_read_port(m, state, name="state_rd"), state.write_port()
        acc_wr = acc.write_port()
        # Not transparent: a transparent port would put an address compare behind the weight
        # memory's output (the post index); stage 2 forwards the last three updates instead. Every
        # read port is a registered asynchronous read (hw.lib.ram), so that Yosys honours
        # no_rw_check and adds no read-during-write compare to any of them.
        acc_rd = registered_read_port(m, acc, name="acc_rd")
        ext_rd, ext_wr = registered_read_port(m, ext, name="ext_rd"), ext.write_port()
        syn_busy = w_valid = None    # SPRAM store: bank conflict, registered write-back
        if spram:
            syn_rd, syn_wr, syn_busy, w_valid = self._spram_store(m)
        else:
            syn_rd, syn_wr = registered_read_port(m, syn, name="syn_rd"), syn.write_port()
        row_rd = row_wr = bmp_rd = bmp_wr = None    # ports of the memories an encoding lacks
        if not crossbar:
            m.submodules.row = row = Memory(shape=c.row_bits, depth=N, init=[], attrs=rw)
            row_rd, row_wr = registered_read_port(m, row, name="row_rd"), row.write_port()
        if bitmap:
            m.submodules.bmp = bmp = Memory(shape=c.bitmap_word, depth=c.bmp_depth, init=[], attrs=rw)
            bmp_rd, bmp_wr = registered_read_port(m, bmp, name="bmp_rd"), bmp.write_port()

        # The walk queue: neurons whose row must be walked this step. The sweep only writes it and
        # the walk only reads it, so it is a memory with two pointers (reset at each sweep) rather
        # than a general FIFO, and its state is kept in flags that need no compare after a pop.
        m.submodules.qmem = qmem = Memory(shape=entry_layout.size, depth=N, init=[], attrs=rw)
        q_rd, q_wr = registered_read_port(m, qmem, name="q_rd"), qmem.write_port()
        q_wp, q_rp = Signal(range(N)), Signal(range(N))
        q_count = Signal(range(N + 1))
        q_nonempty, q_one = Signal(), Signal()
        q_push, q_pop = Signal(), Signal()
        head = entry_layout(q_rd.data)
        # q_rp1 = q_rp + 1, kept in a register so that no carry chain sits between the pop decision
        # and the read address.
        q_rp1 = Signal(len(q_rp) + 1, init=1)
        # The read address is the register q_rp alone (no pop multiplexer): a pop-driven address
        # would put the whole pop decision in front of the block RAM's address. The pointers and
        # flags follow a pop a cycle later (q_popped), so the pop decision drives two flip-flops'
        # data, not the enables of the pointers and counters (its fan-out was the UP5K critical
        # path). After a pop the new head arrives three cycles later, when the next pop can be
        # decided at the earliest (a pop is followed by at least two cycles with the walker's
        # p_valid or f_valid set); q_nonempty is up to date a cycle before that.
        q_popped = Signal()
        m.d.sync += q_popped.eq(q_pop)
        m.d.comb += q_rd.addr.eq(q_rp)
        with m.If(q_push):
            m.d.sync += [q_wp.eq(q_wp + 1), q_count.eq(q_count + 1), q_nonempty.eq(1),
                         q_one.eq(q_count == 0)]
        with m.If(q_popped):
            m.d.sync += [q_rp.eq(q_rp1), q_rp1.eq(q_rp1 + 1), q_count.eq(q_count - 1), q_nonempty.eq(~q_one),
                         q_one.eq(q_count == 2)]

        # The phase is also kept one-hot: its decode drives every memory port's multiplexers.
        phase = Signal(2)
        one_hot = Signal(4, init=1 << PHASE_INPUT)
        m.d.comb += self.o_phase.eq(phase)
        in_input, in_sweep = one_hot[PHASE_INPUT], one_hot[PHASE_SWEEP]
        in_walk, in_eos = one_hot[PHASE_WALK], one_hot[PHASE_EOS]

        err = Signal(ERROR_LAYOUT)
        m.d.comb += self.o_err.eq(err)
        with m.If(self.i_err_clear):
            m.d.sync += err.eq(0)
        ns.keep(locals(), (
            "N acc_rd acc_wr bitmap bmp_rd bmp_wr c crossbar csr entry_layout err ext_rd ext_wr head "
            "in_eos in_input in_sweep in_walk nb one_hot pb phase q_nonempty q_pop q_push q_rp q_rp1 "
            "q_wp q_wr row_rd row_wr spram st_rd st_wr syn_busy syn_rd syn_wr w_valid"))

    def _spram_store(self, m):
        """The synapse memory on SPRAM: port-like read and write signal groups, the bank-conflict
        signal (the registered write-back uses the bank of the read address this cycle) and the
        write-back's valid flag."""
        c = self.cfg
        m.submodules.syn = store = InterleavedSPRAM(c.syn_depth, c.syn_bits, primitives=self._primitives)
        pb = c.ptr_bits
        syn_rd = _Port(addr=Signal(pb, name="syn_raddr"), data=Signal(c.syn_bits, name="syn_rdata"))
        syn_wr = _Port(addr=Signal(pb, name="syn_waddr"), data=Signal(c.syn_bits, name="syn_wdata"),
                       en=Signal(name="syn_we"))
        # The write-back register: one more cycle between a read and its write-back (7, odd).
        w_valid, w_addr, w_data = Signal(), Signal(pb), Signal(c.syn_bits)
        m.d.sync += [w_valid.eq(syn_wr.en), w_addr.eq(syn_wr.addr), w_data.eq(syn_wr.data)]
        m.d.comb += [store.raddr.eq(syn_rd.addr), syn_rd.data.eq(store.rdata),
                     store.waddr.eq(w_addr), store.wdata.eq(w_data), store.we.eq(w_valid)]
        return syn_rd, syn_wr, store.wbank_busy, w_valid

    def _build_input(self, m, ns):
        """Input phase and config commands: events into the accumulators, commands in three steps."""
        (N, bitmap, bmp_rd, c, crossbar, err, ext_wr, in_input, nb, one_hot, phase, q_rp, q_rp1, q_wp,
         row_rd, st_rd, syn_rd) = ns.get(
            "N bitmap bmp_rd c crossbar err ext_wr in_input nb one_hot phase q_rp q_rp1 q_wp row_rd st_rd "
            "syn_rd")
        # ---------------------------------------------------------------- input phase + config
        # Input events are registered before they act (ev_*); after an end-of-step marker nothing
        # more is accepted until the step has been processed.
        ev_valid, ev_eos, ev_ok, ev_n = Signal(), Signal(), Signal(), Signal(nb)
        hold = ev_valid & ev_eos
        # Reset sweep (see the class docstring): neuron `clr_n` is cleared while `clearing`.
        m.submodules.reset_sweep = reset_sweep = sweep.ResetSweep(c)
        clearing, clr_n = reset_sweep.o_clearing, reset_sweep.o_n
        # Config commands (hw.stdp.config_port.ConfigPort) take priority over events.
        m.submodules.config_port = cfg_port = ConfigPort(c)
        wiring.connect(m, wiring.flipped(self.i_cfg), cfg_port.i_cfg)
        wiring.connect(m, wiring.flipped(self.o_rdata), cfg_port.o_rdata)
        m.d.comb += [cfg_port.i_accept.eq(in_input & ~hold & ~clearing),
                     cfg_port.i_rd_syn.eq(syn_rd.data), cfg_port.i_rd_state.eq(st_rd.data)]
        if not crossbar:
            m.d.comb += cfg_port.i_rd_row.eq(row_rd.data)
        if bitmap:
            m.d.comb += cfg_port.i_rd_bmp.eq(bmp_rd.data)
        m.d.comb += self.i_aer.ready.eq(in_input & ~cfg_port.o_busy & ~hold & ~self.i_cfg.valid & ~clearing)
        with m.If(cfg_port.o_bad_cfg):
            m.d.sync += err.bad_cfg.eq(1)
        cmd = cfg_port.o_cmd
        cfg_wr = {mem: cfg_port.o_write[mem] for mem in (spec.MEM_SYN, spec.MEM_ROW, spec.MEM_BMP,
                                                          spec.MEM_STATE)}
        cfg_next_valid, cfg_next_addr = cfg_port.o_next_valid, cfg_port.o_next_addr

        ev = self.i_aer.payload
        m.d.sync += [ev_valid.eq(self.i_aer.valid & self.i_aer.ready), ev_eos.eq(ev.eos),
                     ev_ok.eq(ev.neuron < N), ev_n.eq(ev.neuron)]
        with m.If(ev_valid):
            with m.If(ev_eos):
                m.d.sync += [*goto(phase, one_hot, PHASE_SWEEP), q_wp.eq(0), q_rp.eq(0), q_rp1.eq(1)]
            with m.Elif(~ev_ok):
                m.d.sync += err.bad_event.eq(1)
            with m.Else():
                m.d.comb += [ext_wr.addr.eq(ev_n), ext_wr.data.eq(1), ext_wr.en.eq(1)]
        ns.keep(locals(), "cfg_next_addr cfg_next_valid cfg_wr clearing clr_n cmd")

    def _build_sweep(self, m, ns):
        """Neuron sweep (:class:`hw.stdp.sweep.NeuronSweep`): its memory reads and writes, queue pushes."""
        (acc_rd, acc_wr, c, ext_rd, ext_wr, in_sweep, one_hot, phase, q_push, q_wp, q_wr, st_rd,
         st_wr) = ns.get("acc_rd acc_wr c ext_rd ext_wr in_sweep one_hot phase q_push q_wp q_wr st_rd st_wr")
        m.submodules.neuron_sweep = nsw = sweep.NeuronSweep(c)
        m.d.comb += [nsw.i_run.eq(in_sweep), nsw.i_state.eq(st_rd.data), nsw.i_acc.eq(acc_rd.data),
                     nsw.i_ext.eq(ext_rd.data[0])]
        with m.If(in_sweep):
            m.d.comb += [st_rd.addr.eq(nsw.o_rd_n), acc_rd.addr.eq(nsw.o_rd_n), ext_rd.addr.eq(nsw.o_rd_n)]
        with m.If(nsw.o_done):
            m.d.sync += goto(phase, one_hot, PHASE_WALK)
        m.d.comb += [q_wr.addr.eq(q_wp), q_wr.data.eq(nsw.o_entry), q_wr.en.eq(nsw.o_push),
                     q_push.eq(nsw.o_push)]
        # The state's write data is the sweep's whether or not it writes (the config write and the
        # reset sweep override it), so the sweep's enable is not one more input of every data bit.
        m.d.comb += st_wr.data.eq(nsw.o_wr_state.as_value())
        with m.If(nsw.o_wr_en):
            m.d.comb += [
                st_wr.addr.eq(nsw.o_wr_n), st_wr.en.eq(1),
                acc_wr.addr.eq(nsw.o_wr_n), acc_wr.en.eq(1),   # data 0: see _build_reset_sweep
                ext_wr.addr.eq(nsw.o_wr_n), ext_wr.data.eq(0), ext_wr.en.eq(1),
            ]

    def _build_walk_issue(self, m, ns):
        """Row walk, address side (:class:`hw.stdp.walker.RowWalker`); the end-of-step marker."""
        (bmp_rd, c, cfg_next_addr, cfg_next_valid, crossbar, bitmap, head, in_eos, in_walk, one_hot,
         phase, q_nonempty, q_pop, row_rd, syn_busy) = ns.get(
            "bmp_rd c cfg_next_addr cfg_next_valid crossbar bitmap head in_eos in_walk one_hot phase "
            "q_nonempty q_pop row_rd syn_busy")
        m.submodules.walker = walker = RowWalker(c)
        m.d.comb += [walker.i_run.eq(in_walk), walker.i_head.eq(head), walker.i_nonempty.eq(q_nonempty),
                     walker.i_spike_ready.eq(self.o_aer.ready), q_pop.eq(walker.o_pop),
                     walker.i_cfg_next_valid.eq(cfg_next_valid), walker.i_cfg_next_addr.eq(cfg_next_addr)]
        if syn_busy is not None:
            m.d.comb += walker.i_syn_busy.eq(syn_busy)
        if not crossbar:
            m.d.comb += walker.i_row.eq(row_rd.data)
            with m.If(in_walk):
                m.d.comb += row_rd.addr.eq(walker.o_row_addr)
        if bitmap:
            m.d.comb += walker.i_bmp.eq(bmp_rd.data)
            with m.If(in_walk):
                m.d.comb += bmp_rd.addr.eq(walker.o_bmp_addr)
        with m.If(in_walk):
            m.d.comb += [self.o_aer.valid.eq(walker.o_spike_valid), self.o_aer.payload.neuron.eq(head.n)]
        with m.If(in_eos):
            m.d.comb += [self.o_aer.valid.eq(1), self.o_aer.payload.eos.eq(1)]
            with m.If(self.o_aer.ready):
                m.d.sync += goto(phase, one_hot, PHASE_INPUT)
        ns.keep(locals(), "walker")

    def _build_walk_pipeline(self, m, ns):
        """Row walk, read-modify-write (:class:`hw.stdp.pipeline.UpdatePipeline`); end of the walk."""
        (acc_rd, acc_wr, bitmap, c, in_walk, one_hot, phase, q_nonempty, st_rd, syn_rd, syn_wr, w_valid,
         walker) = ns.get(
            "acc_rd acc_wr bitmap c in_walk one_hot phase q_nonempty st_rd syn_rd syn_wr w_valid walker")
        # S0: the synapse read, at the issuer's address (bitmap) or at the register o_syn_raddr, which
        # follows it (CSR, crossbar).
        if bitmap:
            with m.If(in_walk):
                m.d.comb += syn_rd.addr.eq(walker.o_addr)
        else:
            m.d.comb += syn_rd.addr.eq(walker.o_syn_raddr)
        m.submodules.update = pipe = UpdatePipeline(c)
        m.d.comb += [pipe.i_issue.eq(walker.o_issue), pipe.i_addr.eq(walker.o_addr), pipe.i_q.eq(walker.o_q),
                     pipe.i_entry.eq(walker.o_entry), pipe.i_syn.eq(syn_rd.data),
                     pipe.i_post.eq(st_rd.data), pipe.i_acc.eq(acc_rd.data)]
        with m.If(in_walk):
            m.d.comb += [st_rd.addr.eq(pipe.o_post_n), acc_rd.addr.eq(pipe.o_post_n)]
        with m.If(pipe.o_acc_wr_en):
            m.d.comb += [acc_wr.addr.eq(pipe.o_acc_wr_n), acc_wr.en.eq(1)]   # data: _build_reset_sweep
        with m.If(pipe.o_syn_wr_en):
            m.d.comb += [syn_wr.addr.eq(pipe.o_syn_wr_addr), syn_wr.en.eq(1),
                         syn_wr.data.eq(pipe.o_syn_wr_data)]

        walk_idle = ~(q_nonempty | walker.o_busy | pipe.o_busy)
        if w_valid is not None:
            walk_idle = walk_idle & ~w_valid
        with m.If(in_walk & walk_idle):
            m.d.sync += goto(phase, one_hot, PHASE_EOS)

    def _build_config_port(self, m, ns):
        """Config reads and writes of the memories (after the walk, so they take precedence)."""
        (bitmap, bmp_rd, bmp_wr, cfg_wr, cmd, crossbar, in_input, row_rd, row_wr, st_rd, st_wr, syn_rd,
         syn_wr) = ns.get(
            "bitmap bmp_rd bmp_wr cfg_wr cmd crossbar in_input row_rd row_wr st_rd st_wr syn_rd syn_wr")
        # ---------------------------------------------------------------- config port muxing
        with m.If(in_input):
            a = cmd.addr
            m.d.comb += st_rd.addr.eq(a)
            if bitmap:
                m.d.comb += syn_rd.addr.eq(a)
            if not crossbar:
                m.d.comb += row_rd.addr.eq(a)
            if bitmap:
                m.d.comb += bmp_rd.addr.eq(a)
        a = cmd.addr
        with m.If(cfg_wr[spec.MEM_SYN]):
            m.d.comb += [syn_wr.addr.eq(a), syn_wr.data.eq(cmd.data), syn_wr.en.eq(1)]
        if not crossbar:
            with m.If(cfg_wr[spec.MEM_ROW]):
                m.d.comb += [row_wr.addr.eq(a), row_wr.data.eq(cmd.data), row_wr.en.eq(1)]
        if bitmap:
            with m.If(cfg_wr[spec.MEM_BMP]):
                m.d.comb += [bmp_wr.addr.eq(a), bmp_wr.data.eq(cmd.data), bmp_wr.en.eq(1)]
        with m.If(cfg_wr[spec.MEM_STATE]):
            m.d.comb += [st_wr.addr.eq(a), st_wr.data.eq(cmd.data), st_wr.en.eq(1)]

    def _build_reset_sweep(self, m, ns):
        """Reset sweep: clears neuron states and accumulators; last, so its writes take precedence."""
        acc_wr, c, clearing, clr_n, ext_wr, st_wr = ns.get("acc_wr c clearing clr_n ext_wr st_wr")
        nsw, pipe = m.submodules["neuron_sweep"], m.submodules["update"]
        # The accumulator's write data, for all three writers: 0 from the neuron sweep and the
        # reset sweep, the pipeline's registered sum otherwise. Not gated by the pipeline's write
        # enable, so one LUT level sits between that register and the block RAM.
        m.d.comb += acc_wr.data.eq(Mux(nsw.o_wr_en | clearing, 0, pipe.o_acc_wr_data))
        # ---------------------------------------------------------------- reset sweep
        # Last, so that its writes take precedence (nothing else writes these memories while the
        # core is clearing: no event or command is accepted, and the pipelines are reset).
        with m.If(clearing):
            m.d.comb += [st_wr.addr.eq(clr_n), st_wr.data.eq(spec.pack_state(c, spec.reset_state(c))),
                         st_wr.en.eq(1),
                         acc_wr.addr.eq(clr_n), acc_wr.en.eq(1),
                         ext_wr.addr.eq(clr_n), ext_wr.data.eq(0), ext_wr.en.eq(1)]
