"""The lab's emulated Cilium: decisions only, faithful to FACTS.md; the wire stays real."""
