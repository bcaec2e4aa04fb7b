"""Speed and memory benchmarks (`make bench`): they print measured ratios; they are not tests."""
