"""The lab router as MikroTik RouterOS: the RouterOS API over the lab's FRR."""
