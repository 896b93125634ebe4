"""The name of the RouterOS stand-in image (the lab's RouterOS API over FRR, built locally where no
CHR image can be had): the image builder tags it, and a k3d run that uses it says its router was
emulated."""

STANDIN_REPOSITORY = "bgpconform/chr-standin"
