"""STDP synapse memory: forward-table presynaptic-event-triggered STDP with LIF neurons."""

from ..blocks import BlockSpec, Param, declared_defaults
from . import spec
from .core import STDPCore

__all__ = ["STDPCore", "spec", "BLOCKS"]

_STDPCONFIG_DEFAULTS = declared_defaults(spec.STDPConfig)

BLOCKS = [
    BlockSpec(
        name="stdp_core",
        summary="forward-table STDP synapse memory with LIF neurons, AER in/out, 1 synapse RMW/cycle",
        factory=STDPCore,
        defaults_from=spec.STDPConfig,
        params={
            "n_neurons": Param(_STDPCONFIG_DEFAULTS["n_neurons"], "neurons N, 2..4096"),
            "max_synapses": Param(_STDPCONFIG_DEFAULTS["max_synapses"],
                                  "synapse memory depth (csr/bitmap), 1..65536"),
            "encoding": Param(_STDPCONFIG_DEFAULTS["encoding"],
                              "synapse encoding", kind=str, choices=spec.ENCODINGS),
            "w_bits": Param(_STDPCONFIG_DEFAULTS["w_bits"], "weight bits, 1..16"),
            "v_bits": Param(_STDPCONFIG_DEFAULTS["v_bits"], "membrane / accumulator bits, 4..24"),
            "window": Param(_STDPCONFIG_DEFAULTS["window"], "STDP window T (timer saturation), 2..128"),
            "threshold": Param(_STDPCONFIG_DEFAULTS["threshold"], "spike threshold, 1..2**v_bits-1"),
            "leak_shift": Param(_STDPCONFIG_DEFAULTS["leak_shift"],
                                "leak v >> leak_shift per step, 0..v_bits"),
            "v_reset": Param(_STDPCONFIG_DEFAULTS["v_reset"], "membrane after a spike, 0..threshold-1"),
            "refractory": Param(_STDPCONFIG_DEFAULTS["refractory"], "refractory steps, 0..255"),
            "bitmap_word": Param(_STDPCONFIG_DEFAULTS["bitmap_word"],
                                 "bitmap word bits (bitmap encoding): 8, 16, 32"),
            "syn_store": Param(_STDPCONFIG_DEFAULTS["syn_store"],
                               "synapse memory: block RAM or iCE40UP5K SPRAM (csr/crossbar)", kind=str,
                               choices=spec.SYN_STORES),
        },
        smoke_test="sim.stdp.tb_stdp",
        smoke_params={"n_neurons": 32, "max_synapses": 256, "w_bits": 6, "v_bits": 12, "threshold": 40,
                      "window": 8, "refractory": 1},
        # The UP5K row of `edgelearn demo`: the largest forward table that fits the iCE40UP5K's 30
        # block RAMs next to the neuron state (N = 256, 7168 synapses of 4-bit weights; 8192 need 31).
        synth_params={"n_neurons": 256, "max_synapses": 7168, "w_bits": 4, "v_bits": 12, "threshold": 64},
        demo="sim.stdp.demo:run",
    ),
]
