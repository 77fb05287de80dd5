"""Running a long job: compute device and precision, Ctrl-C handling, learning-rate schedules,
the run directory with its resume state, and the iteration loop that `train` and `pretrain`
share (each brings its own step function)."""
