"""Host side: the driver, its transports (serial port, simulated board), the high-level API and jobs."""
