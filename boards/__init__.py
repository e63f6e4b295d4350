"""Board top-levels, synthesis / place-and-route, build and flash."""
