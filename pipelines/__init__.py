"""Click commands wiring the seqae stages together (the ``pipe`` console script)."""
