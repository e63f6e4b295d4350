"""Golden models (numpy), cocotb testbenches and the simulation runner."""
