"""Developer-submitted Python: the compile gate, the sealed runner and the checks on outputs."""
