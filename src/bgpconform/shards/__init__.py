"""The suite split over labs side by side: each shard a pytest run of its own, one merged report."""
