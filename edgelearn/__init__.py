"""The edgelearn command-line interface."""
