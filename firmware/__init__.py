"""Host driver and the UART protocol shared with the gateware controller."""
