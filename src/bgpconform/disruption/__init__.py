"""What a fault does to traffic: the probe's samples on one clock, and the figures read from them."""
