"""The cross-paper leaderboard: one common panel judges every registered protection method."""
