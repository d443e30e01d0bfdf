"""Where seqae keeps what it makes, and how: errors, atomic files, JSON files, manifests, locks
and the run folder (``RunDir``, ``ModelDir``). Every stage stands on it; it imports no stage."""
