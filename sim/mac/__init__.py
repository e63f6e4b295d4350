"""Golden model, simulation drivers, cocotb testbenches and demo of the MAC array (:mod:`hw.mac`)."""
