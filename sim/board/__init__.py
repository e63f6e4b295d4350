"""The simulated board: board cores run in a simulator and driven at the UART pins."""
