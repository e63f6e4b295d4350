"""The STDP core's configuration port: memory load and read-back commands, checked and registered."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from . import spec

__all__ = ["ConfigPort", "cfg_layout"]

#: The memories a command can address, in the bit order of ``ConfigPort.o_write``.
MEMS = (spec.MEM_SYN, spec.MEM_ROW, spec.MEM_BMP, spec.MEM_STATE)


def cfg_layout(data_bits):
    """Configuration command: write (1) or read (0) ``data`` at ``addr`` of memory ``mem``."""
    return data.StructLayout({"write": 1, "mem": 2, "addr": spec.CFG_ADDR_BITS, "data": data_bits})


class ConfigPort(wiring.Component):
    """Takes memory load / read-back commands (:mod:`hw.stdp.spec`, "Streams") one at a time, in
    three registered steps (accept; check the address; access the memory), so that no check sits
    between the input stream and a memory's write enable.

    Interface contract: a command is taken from ``i_cfg`` only while ``i_accept`` is 1 and the port
    is not busy (``o_busy``: a command in flight or its read word not yet taken). In the cycle after
    it is taken, ``o_next_valid`` is 1 and ``o_next_addr`` is its address (the core loads its
    synapse read-address register from it). In the cycle after that, ``o_cmd`` holds the command and
    ``o_write[mem]`` (bit ``mem`` = ``spec.MEM_*``) is 1 for a write to a valid address of ``mem``:
    the core writes ``o_cmd.data`` at ``o_cmd.addr`` in that cycle, and presents every memory's read
    port with ``o_cmd.addr`` while ``o_cmd`` is held (the core's input phase). The memories' read
    words arrive on ``i_rd_*`` one cycle later. An invalid address (beyond the memory's depth for the
    configuration, or a CSR row word whose end lies beyond the synapse memory or before its start)
    raises ``o_bad_cfg`` for one cycle, the cycle in which ``o_cmd`` holds the command, and writes
    nothing.

    Cycle behaviour: a read's word (0 for an invalid address) is offered on ``o_rdata`` five cycles
    after the cycle in which the command was taken, and held until taken; the port takes a command
    at most every third cycle.

    Parameters
    ----------
    cfg : STDPConfig

    Members
    -------
    i_cfg : In(stream.Signature(cfg_layout(cfg_data_bits)))
    o_rdata : Out(stream.Signature(cfg_data_bits))
    i_accept : In(1)
    o_busy : Out(1)
    o_next_valid : Out(1)
    o_next_addr : Out(CFG_ADDR_BITS)
    o_cmd : Out(cfg_layout(cfg_data_bits))
    o_write : Out(4)
    i_rd_syn, i_rd_row, i_rd_bmp, i_rd_state : In(cfg_data_bits)
        Read words of the memories (those an encoding lacks are not used).
    o_bad_cfg : Out(1)
    """

    def __init__(self, cfg):
        self.cfg = spec.check_config(cfg)
        db = cfg.cfg_data_bits
        super().__init__({
            "i_cfg": In(stream.Signature(cfg_layout(db))),
            "o_rdata": Out(stream.Signature(db)),
            "i_accept": In(1),
            "o_busy": Out(1),
            "o_next_valid": Out(1),
            "o_next_addr": Out(spec.CFG_ADDR_BITS),
            "o_cmd": Out(cfg_layout(db)),
            "o_write": Out(len(MEMS)),
            "i_rd_syn": In(db), "i_rd_row": In(db), "i_rd_bmp": In(db), "i_rd_state": In(db),
            "o_bad_cfg": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        c = self.cfg
        pb = c.ptr_bits
        layout = cfg_layout(c.cfg_data_bits)
        cmd_valid, chk_valid = self.o_next_valid, Signal()
        cmd_in, cmd = Signal(layout), self.o_cmd
        chk_ok = Signal()
        rd_pending = Signal()
        rd_ok = Signal()
        rd_mem = Signal(2)
        rd_word_valid = Signal()
        m.d.comb += self.o_busy.eq(cmd_valid | chk_valid | rd_pending | rd_word_valid | self.o_rdata.valid)
        m.d.comb += self.i_cfg.ready.eq(self.i_accept & ~self.o_busy)
        # The payload is registered every cycle, so the command register needs no enable (a wide
        # enable from the handshake went through a global buffer and was the critical path): in the
        # cycle after a transfer, `cmd_in` holds the accepted command, and only then is it read.
        m.d.sync += cmd_in.eq(self.i_cfg.payload)
        m.d.comb += self.o_next_addr.eq(cmd_in.addr)
        with m.If(self.i_cfg.valid & self.i_cfg.ready):
            m.d.sync += cmd_valid.eq(1)

        # The address checks are registered with `cmd_in`, from the same payload (one compare per
        # memory's depth), so only the memory's selection of them lies behind `cmd_in`.
        payload = self.i_cfg.payload
        in_depth = Signal(len(MEMS))      # cmd_in.addr < depth of memory MEMS[i]
        row_ok = Signal()                 # cmd_in.data as a row word: start <= end <= syn_depth
        # A memory of depth 0 (absent in this configuration) takes no address: a constant, not a
        # compare with 0 (which Verilator lints as constant).
        m.d.sync += [in_depth[i].eq(payload.addr < c.mem_depth(mem) if c.mem_depth(mem) else 0)
                     for i, mem in enumerate(MEMS)]
        addr_ok = Signal()
        with m.Switch(cmd_in.mem):
            for i, mem in enumerate(MEMS):
                with m.Case(mem):
                    m.d.comb += addr_ok.eq(in_depth[i])
        if c.encoding == "csr":
            # A row word whose end lies beyond the synapse memory, or before its start, is refused.
            start, end = payload.data[:pb], payload.data[pb:2 * pb]
            m.d.sync += row_ok.eq((start <= end) & (end <= c.syn_depth))
            with m.If(cmd_in.mem == spec.MEM_ROW):
                m.d.comb += addr_ok.eq(in_depth[MEMS.index(spec.MEM_ROW)] & row_ok)
        with m.If(cmd_valid):
            m.d.sync += [cmd.eq(cmd_in), chk_ok.eq(addr_ok), chk_valid.eq(1), cmd_valid.eq(0)]
        with m.If(chk_valid):
            m.d.sync += chk_valid.eq(0)
            with m.If(~chk_ok):
                m.d.comb += self.o_bad_cfg.eq(1)
            with m.If(~cmd.write):
                m.d.sync += [rd_pending.eq(1), rd_mem.eq(cmd.mem), rd_ok.eq(chk_ok)]
        # The write enables, one per memory, are registered with `cmd` (from the same check as
        # chk_ok), so the memories' write-port multiplexers select from flip-flops (chk_ok -> write /
        # memory decode -> state write data was a UP5K critical path). A command is only accepted in
        # the input phase and the phase cannot change before it is done, so they need no phase gate.
        for mem in MEMS:
            m.d.sync += self.o_write[mem].eq(cmd_valid & cmd_in.write & addr_ok & (cmd_in.mem == mem))

        # Read-back in two registered steps after the memory access: the synapse memory's word (it
        # comes through the read-data multiplexers of tens of block RAMs) and the other memories'
        # word are registered every cycle, without an enable; the next cycle picks one of them.
        rd_syn, rd_other = Signal(c.cfg_data_bits), Signal(c.cfg_data_bits)
        other = Signal(c.cfg_data_bits)
        with m.Switch(rd_mem):
            if c.encoding != "crossbar":
                with m.Case(spec.MEM_ROW):
                    m.d.comb += other.eq(self.i_rd_row)
            if c.encoding == "bitmap":
                with m.Case(spec.MEM_BMP):
                    m.d.comb += other.eq(self.i_rd_bmp)
            with m.Case(spec.MEM_STATE):
                m.d.comb += other.eq(self.i_rd_state)
        m.d.sync += [rd_syn.eq(self.i_rd_syn), rd_other.eq(other)]
        with m.If(rd_pending):
            m.d.sync += [rd_pending.eq(0), rd_word_valid.eq(1)]
        with m.If(rd_word_valid):
            word = Mux(rd_mem == spec.MEM_SYN, rd_syn, rd_other)
            m.d.sync += [self.o_rdata.payload.eq(Mux(rd_ok, word, 0)), self.o_rdata.valid.eq(1),
                         rd_word_valid.eq(0)]
        with m.If(self.o_rdata.valid & self.o_rdata.ready):
            m.d.sync += self.o_rdata.valid.eq(0)
        return m
