"""STDP synapse memory: forward-table presynaptic-event-triggered STDP with LIF neurons."""

from ..blocks import BlockSpec, declared_params
from . import spec
from .core import STDPCore

__all__ = ["STDPCore", "spec", "BLOCKS"]

BLOCKS = [
    BlockSpec(name="stdp_core", factory=STDPCore,
        summary="forward-table STDP synapse memory with LIF neurons, AER in/out, 1 synapse RMW/cycle",
        defaults_from=spec.STDPConfig,
        params=declared_params(spec.STDPConfig, """
            n_neurons     neurons N, 2..4096
            max_synapses  synapse memory depth (csr/bitmap), 1..65536
            encoding      synapse encoding
            w_bits        weight bits, 1..16
            v_bits        membrane / accumulator bits, 4..24
            window        STDP window T (timer saturation), 2..128
            threshold     spike threshold, 1..2**v_bits-1
            leak_shift    leak v >> leak_shift per step, 0..v_bits
            v_reset       membrane after a spike, 0..threshold-1
            refractory    refractory steps, 0..255
            bitmap_word   bitmap word bits (bitmap encoding): 8, 16, 32
            syn_store     synapse memory: block RAM or iCE40UP5K SPRAM (csr/crossbar)
        """, choices={"encoding": spec.ENCODINGS, "syn_store": spec.SYN_STORES}),
        smoke_test="sim.stdp.tb_stdp",
        smoke_params={"n_neurons": 32, "max_synapses": 256, "w_bits": 6, "v_bits": 12, "threshold": 40,
                      "window": 8, "refractory": 1},
        # The UP5K row of `edgelearn demo`: the largest forward table that fits the iCE40UP5K's 30
        # block RAMs next to the neuron state (N = 256, 7168 synapses of 4-bit weights; 8192 need 31).
        synth_params={"n_neurons": 256, "max_synapses": 7168, "w_bits": 4, "v_bits": 12, "threshold": 64},
        demo="sim.stdp.demo:run",
    ),
]
