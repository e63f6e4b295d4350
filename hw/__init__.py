"""edgelearn gateware: Amaranth components, one subpackage per block.

This package imports only Amaranth and numpy-free Python. Each block subpackage exposes
``BLOCKS``, a list of :class:`hw.blocks.BlockSpec`, which :func:`hw.blocks.all_blocks` discovers.
"""
