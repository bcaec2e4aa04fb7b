"""Shared adversarial attacks (torchattacks-backed) for any detector or recognizer; see docs/attacks.md."""

from src.attacks.adapters import BPDA, LogitsOnly, victim_mode
from src.attacks.suite import ATTACKS, Attack, AttackSpec, build_attack

__all__ = ["ATTACKS", "BPDA", "Attack", "AttackSpec", "LogitsOnly", "build_attack", "victim_mode"]
