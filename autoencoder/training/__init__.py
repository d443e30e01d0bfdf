"""The training loop: the trainer, its checkpoints, the step trace and the code-reliance measure."""
