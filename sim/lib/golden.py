"""Reference model of :class:`hw.lib.spram.SPRAM` (pure Python), shared by its Amaranth and cocotb tests."""

__all__ = ["SPRAMModel"]


class SPRAMModel:
    """A ``depth`` x ``width`` single-port RAM with a nibble write mask and an out-of-range flag.

    :meth:`access` applies one clock edge; :attr:`rdata` is then the data output the design must
    show (``None``: undefined, after a write), :attr:`err` the sticky flag.
    """

    def __init__(self, depth, width):
        self.depth, self.width = depth, width
        self.mem = {}
        self.rdata = None
        self.err = 0

    def access(self, *, en, we=0, addr=0, wdata=0, mask=0, err_clear=0):
        err = self.err & ~err_clear & 1
        if en:
            if addr >= self.depth:
                err = 1
                if not we:
                    self.rdata = 0
            elif we:
                old = self.mem.get(addr, 0)
                for k in range(-(-self.width // 4)):
                    if mask >> k & 1:
                        nib = 0xF << 4 * k
                        old = (old & ~nib) | (wdata & nib)
                self.mem[addr] = old & ((1 << self.width) - 1)
                self.rdata = None
            else:
                self.rdata = self.mem.get(addr, 0)
        self.err = err
