"""LoRAT training: ``train.py`` (an accelerate script), its data pipeline and checkpointing.

Installed with the package so that ``lorat demo`` and ``accelerate launch`` find ``training/train.py`` in a
regular (non-editable) install too.
"""
