"""How long a test waits for something that only a hang would stop: long enough for a machine
several times slower than the development one, since these bounds catch hangs, not slowness."""

HANG_S = 300.0
