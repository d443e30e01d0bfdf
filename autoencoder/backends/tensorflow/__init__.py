"""The TensorFlow backend: ``tf.function`` steps (:mod:`.steps`) run through a ``tf.distribute``
strategy over this process's devices (:mod:`.distribute`). See :mod:`autoencoder.backends` for
the interface, whose functions this package exports.
"""

# The functions of the Backend interface (checked when the backend is first used).
from autoencoder.backends.tensorflow.distribute import (  # noqa: F401
    chief_broadcast, default_strategy, devices, distribute_batches, is_chief, is_multi_worker,
    make_strategy, replicas, scope)
from autoencoder.backends.tensorflow.steps import compile_forward, make_train_step  # noqa: F401
