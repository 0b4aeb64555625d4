#	files.dm: the dm(4) device-mapper driver, Rust core with a C glue.
#
# `pseudo-device dm` in a kernel configuration builds it in. The core is the static library
# libdmkmod.a, built by `make -f Makefile.bsd` at the top of the dm tree (kmod/build-staticlib.sh)
# and copied next to these files as dev/dm/libdmkmod.a (with dmcore.h); `object` links it
# into the kernel.

defpseudodev dm: disk, dk_subr
file	dev/dm/dm_dev.c		dm
file	dev/dm/dm_glue.c	dm
object	dev/dm/libdmkmod.a	dm
