"""Golden model, cycle model and simulator harness of the GEMM engine (:mod:`hw.gemm`)."""
