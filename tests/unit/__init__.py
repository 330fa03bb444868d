"""Unit tests of the pure core: model, plan and token broker, with an injected clock and no I/O."""
