"""iFADIT: invertible face anonymisation by a key-conditioned identity transform (its networks so far)."""
