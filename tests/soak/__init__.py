"""Opt-in fault soak (`make soak`): long, time-compressed runs of the real operator under faults."""
