"""Shared gateware: pieces more than one block uses.

- :mod:`hw.lib.crc`: CRC-16/CCITT (polynomial 0x1021, MSB first, init 0xFFFF) — the one spec
  function :func:`~hw.lib.crc.crc16_update` for any word width, and its gateware
  :func:`~hw.lib.crc.crc16_next` (one cycle of XOR logic over any number of words) derived from it.
- :mod:`hw.lib.stream`: :class:`~hw.lib.stream.SkidBuffer` and :class:`~hw.lib.stream.Queue`,
  components with ``amaranth.lib.stream`` signatures, and :func:`~hw.lib.stream.skid_buffer`, the
  skid buffer's logic for a block that builds it in its own module.
- :mod:`hw.lib.spram`: the iCE40UP5K's ``SB_SPRAM256KA`` — :class:`~hw.lib.spram.SPRAM` (1 to 4 of
  them, nibble write mask, sticky out-of-range flag), its behavioural model
  :class:`~hw.lib.spram.SPRAMCell`, and :class:`~hw.lib.spram.InterleavedSPRAM` (a read and a write
  port on even / odd banks).

- :mod:`hw.lib.fifo`: :class:`~hw.lib.fifo.RegisteredFlagFIFO`, ``SyncFIFOBuffered``'s interface and
  cycle behaviour with its flags from registers (checked cycle for cycle against the library FIFO,
  and formally).
- :mod:`hw.lib.ram`: :func:`~hw.lib.ram.registered_read_port`, a block-RAM read port with
  ``read_port()``'s cycle behaviour that Yosys maps without read-during-write emulation (for
  memories with ``no_rw_check``).
- :mod:`hw.lib.logic`: balanced reduction trees, one-hot and index selects (:func:`~hw.lib.logic.tree`,
  :func:`~hw.lib.logic.or_tree`, :func:`~hw.lib.logic.onehot_mux`, :func:`~hw.lib.logic.index_mux`).
"""
