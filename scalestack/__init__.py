"""The scalestack launcher: one topology, rendered configs, supervised processes."""
