"""Jobs as sets of independent tasks (removal chunks, tracking stretches, batches of clips) and the
executors that run them: this process, a local process pool, or Ray."""
