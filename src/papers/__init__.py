"""Papers: one self-contained package per paper (module, networks, protocol, settings, weights fragment).

:func:`src.papers.registry.discover` finds them all; see ``docs/adding-a-paper.md``.
"""
