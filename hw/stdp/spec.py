"""The STDP core spec, shared by the RTL (:mod:`hw.stdp.core`) and the golden model (:mod:`sim.stdp.golden`).

Forward-table, presynaptic-event-triggered STDP (Pedroni et al., 2016) with one timer per neuron, on a
network of leaky integrate-and-fire (LIF) neurons, in integer time steps. Pure Python (no numpy).

Network and state
-----------------
``N`` neurons, ``0 .. N-1``. Each neuron ``n`` has:

* ``v``: membrane potential, unsigned ``v_bits``, saturating;
* ``r``: refractory counter, ``0 .. refractory``;
* ``tau``: its STDP timer, steps since its last spike, saturating at the window ``T`` (``T`` means
  "no spike in the window"; reset value ``T``);
* ``pend``: its last spike still owes the delayed causal (LTP) walk;
* ``spk``: it spiked in the last processed step;
* ``acc``: synaptic input accumulated for the next step (unsigned ``v_bits``, saturating);
* ``ext``: an input (AER) event named it in the current step.

Synapses: for each presynaptic neuron ``p`` a *row* of ``(post q, weight w)``; weights are unsigned
``w_bits`` and saturate at ``0`` and ``2**w_bits - 1``. Kernel tables ``K+`` (``kp``) and ``K-``
(``km``) have ``T`` entries each, indexed by the spike-time difference ``1 .. T-1`` (entry 0 is
unused and must be 0); any table is allowed, :func:`exp_kernel` is the default.

Order of events inside time step ``t`` (the RTL runs these as phases)
----------------------------------------------------------------------
1. **Input.** The AER input events of step ``t`` are collected (``ext[n] = 1``) until the
   end-of-step marker. An event naming a neuron ``>= N`` raises the ``bad_event`` error flag and is
   dropped. Duplicate events are idempotent.
2. **Neuron sweep**, ``n = 0 .. N-1`` (:func:`lif_step`), using the state left by step ``t-1``:

   * ``tau <- 1 if spk else min(tau + 1, T)`` (timers are advanced lazily here, so during step
     ``t``'s walks ``tau`` is the value at the *start* of step ``t``, which excludes spikes of ``t``);
   * if ``r > 0``: ``r <- r - 1``, no spike (external events and input are discarded);
     else ``v <- sat(v - (v >> leak_shift) + acc)``; ``spike = v >= threshold or ext``; on a spike
     ``v <- v_reset``, ``r <- refractory``. So after a spike the neuron cannot spike for
     ``refractory`` steps: inter-spike intervals are ``>= refractory + 1``.
   * ``ltp = pend and (spike or tau == T)``: the previous spike's causal walk is due, either because
     its timer reached ``T`` now or because the neuron spikes again earlier;
     ``pend <- spike or (pend and not ltp)``; ``spk <- spike``; ``acc <- 0``; ``ext <- 0``.
   * if ``spike or ltp`` the neuron is queued for a row walk with ``(spike, ltp, tau_pre = tau)``.
3. **Row walks**, queued neurons in ascending order; a spiking neuron's AER output event is emitted
   when its walk starts. For each synapse ``(q, w)`` of pre ``p``'s row (:func:`synapse_update`),
   with ``tau_q`` and ``spk_q`` of the post after the sweep:

   * *LTP, delayed causal* (if ``ltp``): ``a = 0 if spk_q else tau_q`` (the post's age of its
     latest spike, counting a spike in this step as 0); if ``1 <= tau_pre - a <= T-1``:
     ``w <- sat(w + K+[tau_pre - a])``;
   * *LTD, acausal* (if ``spike``): if ``tau_q < T``: ``w <- sat(w - K-[tau_q])``;
   * *delivery* (if ``spike``): ``acc[q] <- sat(acc[q] + w_read)`` with the weight *as read*, before
     this walk's update; it enters ``q``'s membrane at step ``t+1``.

   LTP is applied before LTD (each saturating). Each synapse is walked at most once per step and the
   additions into ``acc`` are all non-negative with saturation only at the top, so the result does
   not depend on the walk order.
4. **End of step.** After the last walk the AER output stream carries the end-of-step marker; the
   host may then read back learned weights (they are the state after step ``t``).

Exactness. Exact all-to-all pair STDP sums ``K+[d]`` over every (pre spike, later post spike) pair
with ``1 <= d <= T-1`` and ``-K-[d]`` over every (post spike, later pre spike) pair. The rule above
sees, per pre spike, only each post's latest spike; when every inter-spike interval is ``>= T``
(``refractory >= T - 1``, in particular ``refractory >= T``) a window of ``T - 1`` steps holds at
most one spike of a neuron and the two sums are equal, provided no weight saturates.

Synapse encodings (memory layouts; words are little-endian bit fields)
----------------------------------------------------------------------
* ``"csr"`` (forward table, default): synapse memory ``syn[max_synapses]``, word
  ``post | w << post_bits``; row table ``row[N]``, word ``start | end << ptr_bits``, row ``p`` is
  ``syn[start:end]``. Bits: ``S*(post_bits + w_bits) + N*2*ptr_bits``.
* ``"bitmap"`` (bitmap rows, as in PB-BMP): bitmap memory ``bmp[N * words_per_row]`` of
  ``bitmap_word`` bits, bit ``j`` of word ``k`` of row ``p`` at ``bmp[p*words_per_row + k]`` marks
  synapse ``p -> k*bitmap_word + j``; weight memory ``syn[max_synapses]`` of ``w_bits``, row ``p``'s
  weights from ``row[p]`` (word ``start``) in ascending post order. Bits:
  ``N*words_per_row*bitmap_word + S*w_bits + N*ptr_bits``.
* ``"crossbar"`` (dense): weight memory ``syn[N*N]`` of ``w_bits``, ``syn[p*N + q]``; every pair is a
  synapse (absent synapses are weight 0 and stay plastic, as in ODIN). Bits: ``N*N*w_bits``.

Parameters fixed at elaboration
-------------------------------
Network size, memory depths, widths, the kernel tables, threshold, leak, reset and refractory period
are elaboration parameters (constants in the generated RTL), not run-time registers; the synapses and
the neuron states are loaded and read back at run time.

Streams
-------
* AER input and output: ``{neuron: 16 bits, eos: 1 bit}``. ``eos = 1`` is the end-of-step marker
  (its ``neuron`` field is ignored); the output stream lists a step's spikes in ascending order, then
  its marker.
* Configuration (load / read-back): ``{write: 1, mem: 2, addr: 20, data: cfg_data_bits}`` in,
  ``data`` out (one word per read command). ``mem``: :data:`MEM_SYN`, :data:`MEM_ROW`,
  :data:`MEM_BMP`, :data:`MEM_STATE` (neuron state words, :func:`pack_state`). Commands are served
  while the core waits for input events (between steps), so they see the state after the last
  completed step. An address beyond the memory, or a memory the encoding does not have, raises the
  ``bad_cfg`` error flag; the write is ignored, a read returns 0.
"""

import math
from dataclasses import dataclass

from ..params import check_choice, check_int, check_pow2

__all__ = [
    "ENCODINGS", "SYN_STORES", "AER_BITS", "CFG_ADDR_BITS", "MEM_SYN", "MEM_ROW", "MEM_BMP", "MEM_STATE",
    "STDPConfig", "check_config", "NeuronState", "exp_kernel", "bits_for", "lif_step", "synapse_update",
    "pack_state", "unpack_state", "build_image", "image_rows", "memory_bits",
]

ENCODINGS = ("csr", "bitmap", "crossbar")
#: Where the synapse (weight) memory lives: block RAM, or the iCE40UP5K's SPRAM (csr / crossbar only).
SYN_STORES = ("bram", "spram")
#: SPRAM store: one 16-bit SPRAM word per synapse, at most the UP5K's four SPRAMs.
SPRAM_WORD_BITS = 16
SPRAM_MAX_SYNAPSES = 65536
AER_BITS = 16
CFG_ADDR_BITS = 20
MEM_SYN, MEM_ROW, MEM_BMP, MEM_STATE = 0, 1, 2, 3
MAX_NEURONS = 4096
MAX_T = 128


def bits_for(n):
    """Bits to hold the values ``0 .. n`` (at least 1)."""
    return max(1, int(n).bit_length())


def exp_kernel(T, amplitude, tau):
    """Exponential kernel table: ``[0] + [round(amplitude * exp(-d / tau)) for d in 1 .. T-1]``."""
    return (0,) + tuple(int(math.floor(amplitude * math.exp(-d / tau) + 0.5)) for d in range(1, T))


@dataclass(frozen=True)
class STDPConfig:
    """Validated parameters of one STDP core (both the RTL and the golden model take one).

    Parameters
    ----------
    n_neurons : int
        ``N``, 2 to 4096.
    max_synapses : int
        Synapse (weight) memory depth for ``"csr"`` and ``"bitmap"``, 1 to 65536; ignored (``N*N``)
        for ``"crossbar"``.
    w_bits : int
        Weight width, 1 to 16.
    v_bits : int
        Membrane / input accumulator width, 4 to 24.
    window : int
        STDP window ``T`` (timer saturation), 2 to 128.
    kp, km : tuple of int or None
        ``T`` entries each, ``[0] == 0``, each ``0 .. 2**w_bits - 1``. Default: exponential with
        time constant ``T/4`` and amplitudes ``2**(w_bits-3)`` (LTP) and ``1.125`` times that (LTD).
    threshold : int
        Spike when ``v >= threshold``; 1 to ``2**v_bits - 1``.
    leak_shift : int
        Leak ``v >> leak_shift`` per step; 0 to ``v_bits`` (``v_bits``: no leak).
    v_reset : int
        Potential after a spike, 0 to ``threshold - 1``.
    refractory : int
        Steps after a spike in which the neuron cannot spike, 0 to 255.
    encoding : str
        ``"csr"``, ``"bitmap"`` or ``"crossbar"``.
    bitmap_word : int
        Bitmap word width, 8, 16 or 32.
    syn_store : str
        Where the synapse memory lives: ``"bram"`` (block RAM, default) or ``"spram"`` (iCE40UP5K
        single-port RAM, two interleaved banks: even and odd synapse addresses). ``"spram"`` takes
        the ``"csr"`` or ``"crossbar"`` encoding, a synapse word (``post_bits + w_bits``; crossbar:
        ``w_bits``) of at most 16 bits and 2 to 65536 synapses.

    Raises
    ------
    ValueError
        If a parameter is out of range.
    """
    n_neurons: int = 64
    max_synapses: int = 1024
    w_bits: int = 8
    v_bits: int = 16
    window: int = 16
    kp: tuple = None
    km: tuple = None
    threshold: int = 256
    leak_shift: int = 4
    v_reset: int = 0
    refractory: int = 2
    encoding: str = "csr"
    bitmap_word: int = 16
    syn_store: str = "bram"

    def __post_init__(self):
        n = check_int("n_neurons", self.n_neurons, 2, MAX_NEURONS)
        check_choice("encoding", self.encoding, ENCODINGS)
        check_int("max_synapses", self.max_synapses, 1, 1 << 16)
        if self.encoding == "crossbar" and n * n > 1 << CFG_ADDR_BITS:
            raise ValueError(f"n_neurons must be an integer from 2 to 1024 for the crossbar encoding, "
                             f"not {n!r}")
        wb = check_int("w_bits", self.w_bits, 1, 16)
        vb = check_int("v_bits", self.v_bits, 4, 24)
        T = check_int("window", self.window, 2, MAX_T)
        check_int("threshold", self.threshold, 1, (1 << vb) - 1)
        check_int("leak_shift", self.leak_shift, 0, vb)
        check_int("v_reset", self.v_reset, 0, self.threshold - 1)
        check_int("refractory", self.refractory, 0, 255)
        check_pow2("bitmap_word", self.bitmap_word, 8, 32)
        check_choice("syn_store", self.syn_store, SYN_STORES)
        if self.syn_store == "spram":
            self._check_spram()
        amp = max(1, 1 << max(0, wb - 3))
        for name, default in (("kp", exp_kernel(T, amp, T / 4)), ("km", exp_kernel(T, amp * 9 / 8, T / 4))):
            table = getattr(self, name)
            if table is None:
                table = tuple(min(x, (1 << wb) - 1) for x in default)
            if not isinstance(table, (tuple, list)) or len(table) != T:
                raise ValueError(f"{name} must be a table of window={T} integers, not {table!r}")
            for x in table:
                check_int(f"{name} entries", x, 0, (1 << wb) - 1)
            if table[0] != 0:
                raise ValueError(f"{name}[0] must be 0 (it is never used), not {table[0]!r}")
            object.__setattr__(self, name, tuple(table))

    def _check_spram(self):
        if self.encoding not in ("csr", "crossbar"):
            raise ValueError(f"encoding must be 'csr' or 'crossbar' with syn_store='spram', "
                             f"not {self.encoding!r}")
        if self.encoding == "csr":
            check_int("max_synapses (syn_store='spram')", self.max_synapses, 2, SPRAM_MAX_SYNAPSES)
            check_int(f"w_bits (syn_store='spram', n_neurons={self.n_neurons}: a 16-bit synapse word "
                      f"holds {self.post_bits} post bits)", self.w_bits, 1, SPRAM_WORD_BITS - self.post_bits)
        else:
            check_int("n_neurons (syn_store='spram', crossbar)", self.n_neurons, 2, 256)

    # Derived widths and depths -------------------------------------------------------------
    @property
    def T(self):
        return self.window

    @property
    def w_max(self):
        return (1 << self.w_bits) - 1

    @property
    def v_max(self):
        return (1 << self.v_bits) - 1

    @property
    def neuron_bits(self):
        """Bits of a neuron index inside the core."""
        return bits_for(self.n_neurons - 1)

    @property
    def post_bits(self):
        return self.neuron_bits

    @property
    def tau_bits(self):
        return bits_for(self.window)

    @property
    def refr_bits(self):
        return bits_for(self.refractory)

    @property
    def state_bits(self):
        return self.v_bits + self.refr_bits + self.tau_bits + 2

    @property
    def syn_depth(self):
        return self.n_neurons ** 2 if self.encoding == "crossbar" else self.max_synapses

    @property
    def ptr_bits(self):
        return bits_for(self.syn_depth)

    @property
    def syn_bits(self):
        """Width of one synapse memory word."""
        return self.post_bits + self.w_bits if self.encoding == "csr" else self.w_bits

    @property
    def row_bits(self):
        return 2 * self.ptr_bits if self.encoding == "csr" else self.ptr_bits

    @property
    def words_per_row(self):
        return -(-self.n_neurons // self.bitmap_word)

    @property
    def bmp_depth(self):
        return self.n_neurons * self.words_per_row

    def mem_depth(self, mem):
        """Depth of configuration memory ``mem`` (0 if this encoding has none)."""
        return {
            MEM_SYN: self.syn_depth,
            MEM_ROW: 0 if self.encoding == "crossbar" else self.n_neurons,
            MEM_BMP: self.bmp_depth if self.encoding == "bitmap" else 0,
            MEM_STATE: self.n_neurons,
        }[mem]

    @property
    def cfg_data_bits(self):
        return max(self.syn_bits, self.row_bits, self.bitmap_word, self.state_bits)


@dataclass(frozen=True)
class NeuronState:
    v: int = 0
    r: int = 0
    tau: int = 0
    pend: int = 0
    spk: int = 0


def check_config(cfg):
    """``cfg`` if it is an :class:`STDPConfig` (how the core's components take their parameters)."""
    if not isinstance(cfg, STDPConfig):
        raise TypeError(f"cfg must be an STDPConfig, not {type(cfg).__name__}")
    return cfg


def reset_state(cfg):
    """The state every neuron starts in: at rest, timer saturated (no spike in the window)."""
    return NeuronState(v=0, r=0, tau=cfg.window, pend=0, spk=0)


def pack_state(cfg, s):
    """Neuron state word: ``v | r << v_bits | tau << .. | pend << .. | spk << ..``."""
    word, shift = 0, 0
    fields = ((s.v, cfg.v_bits), (s.r, cfg.refr_bits), (s.tau, cfg.tau_bits), (s.pend, 1), (s.spk, 1))
    for value, width in fields:
        word |= (value & ((1 << width) - 1)) << shift
        shift += width
    return word


def unpack_state(cfg, word):
    fields = []
    for width in (cfg.v_bits, cfg.refr_bits, cfg.tau_bits, 1, 1):
        fields.append(word & ((1 << width) - 1))
        word >>= width
    return NeuronState(*fields)


def lif_step(cfg, s, acc, ext):
    """Step 2 for one neuron: ``(new state, spike, ltp)``; queue a walk if ``spike or ltp``.

    The walk's ``tau_pre`` is ``new_state.tau``.
    """
    T = cfg.window
    tau = 1 if s.spk else min(s.tau + 1, T)
    if s.r > 0:
        v, r, spike = s.v, s.r - 1, 0
    else:
        v = min(s.v - (s.v >> cfg.leak_shift) + acc, cfg.v_max)
        spike = int(v >= cfg.threshold or bool(ext))
        r = 0
        if spike:
            v, r = cfg.v_reset, cfg.refractory
    ltp = int(bool(s.pend) and (spike == 1 or tau == T))
    pend = int(spike == 1 or (bool(s.pend) and not ltp))
    return NeuronState(v=v, r=r, tau=tau, pend=pend, spk=spike), spike, ltp


def synapse_update(cfg, w, spike, ltp, tau_pre, tau_q, spk_q):
    """Step 3 for one synapse of a walked row: ``(new weight, delivered input)``."""
    T = cfg.window
    if ltp:
        age = 0 if spk_q else tau_q
        d = tau_pre - age
        if 1 <= d <= T - 1:
            w_new = min(w + cfg.kp[d], cfg.w_max)
        else:
            w_new = w
    else:
        w_new = w
    if spike and tau_q < T:
        w_new = max(w_new - cfg.km[tau_q], 0)
    return w_new, (w if spike else 0)


# Network images ------------------------------------------------------------------------------

def _check_rows(cfg, rows):
    """``rows``: a list of N lists of ``(post, weight)``; posts unique and ascending per row."""
    n = cfg.n_neurons
    if not isinstance(rows, (list, tuple)) or len(rows) != n:
        raise ValueError(f"rows must be a list of n_neurons={n} rows, not {type(rows).__name__} "
                         f"of length {len(rows) if hasattr(rows, '__len__') else '?'}")
    out = []
    for p, row in enumerate(rows):
        clean = []
        for q, w in row:
            if not isinstance(q, int) or not 0 <= q < n:
                raise ValueError(f"post index must be an integer from 0 to {n - 1}, not {q!r} (row {p})")
            check_int("weight", w, 0, cfg.w_max)
            clean.append((q, w))
        posts = [q for q, _ in clean]
        if posts != sorted(set(posts)):
            raise ValueError(f"row {p} must list distinct posts in ascending order, not {posts!r}")
        out.append(clean)
    return out


def dense_rows(cfg, rows):
    """The crossbar view of ``rows``: every pair is a synapse, absent ones weight 0."""
    rows = _check_rows(cfg, rows)
    dense = []
    for row in rows:
        d = dict(row)
        dense.append([(q, d.get(q, 0)) for q in range(cfg.n_neurons)])
    return dense


def effective_rows(cfg, rows):
    """The synapses the core with this encoding has, for network ``rows`` (crossbar: all pairs)."""
    return dense_rows(cfg, rows) if cfg.encoding == "crossbar" else _check_rows(cfg, rows)


def build_image(cfg, rows):
    """Memory contents ``{mem: [words]}`` that load network ``rows`` into a core.

    Raises
    ------
    ValueError
        If a post index is outside the network, a weight is out of range, or a row would end
        beyond the synapse memory.
    """
    rows = effective_rows(cfg, rows)
    image = {MEM_SYN: [], MEM_ROW: [], MEM_BMP: []}
    if cfg.encoding == "crossbar":
        image[MEM_SYN] = [w for row in rows for _, w in row]
        return image
    start = 0
    for p, row in enumerate(rows):
        end = start + len(row)
        if end > cfg.max_synapses:
            raise ValueError(f"row {p} ends at synapse {end}, beyond the synapse memory "
                             f"(max_synapses={cfg.max_synapses})")
        if cfg.encoding == "csr":
            image[MEM_SYN] += [q | w << cfg.post_bits for q, w in row]
            image[MEM_ROW].append(start | end << cfg.ptr_bits)
        else:
            image[MEM_SYN] += [w for _, w in row]
            image[MEM_ROW].append(start)
            words = [0] * cfg.words_per_row
            for q, _ in row:
                words[q // cfg.bitmap_word] |= 1 << (q % cfg.bitmap_word)
            image[MEM_BMP] += words
        start = end
    return image


def image_rows(cfg, image, template):
    """Decode the weights of a read-back synapse memory ``image[MEM_SYN]`` into rows shaped like
    ``template`` (the effective rows that were loaded)."""
    syn = image[MEM_SYN]
    rows, i = [], 0
    for row in template:
        out = []
        for q, _ in row:
            word = syn[i]
            w = word >> cfg.post_bits if cfg.encoding == "csr" else word
            out.append((q, w & cfg.w_max))
            i += 1
        rows.append(out)
    return rows


def memory_bits(encoding, n_neurons, n_synapses, w_bits, bitmap_word=16):
    """Synapse storage bits of an encoding for ``n_synapses`` synapses (formula of the layouts above)."""
    n = n_neurons
    ptr = bits_for(n_synapses)
    post = bits_for(n - 1)
    if encoding == "csr":
        return n_synapses * (post + w_bits) + n * 2 * ptr
    if encoding == "bitmap":
        return n * (-(-n // bitmap_word)) * bitmap_word + n_synapses * w_bits + n * ptr
    if encoding == "crossbar":
        return n * n * w_bits
    raise ValueError(f"encoding must be one of {', '.join(map(repr, ENCODINGS))}, not {encoding!r}")
