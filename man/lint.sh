#!/bin/sh
# lint.sh: checks the manual pages with mandoc(1).
#
#   man/lint.sh [PAGE...]     (default: every *.[1-9] page beside this script)
#
# Fails on any mandoc message of level WARNING or above, and on any STYLE message except
# "referenced manual not found": the pages refer to NetBSD's own manuals (lvm(8), disk(9),
# proplib(3), ...), which a Linux machine does not have.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
command -v mandoc >/dev/null 2>&1 ||
    { echo "lint.sh: mandoc not found (Debian package mandoc; scripts/install-deps.sh)" >&2; exit 2; }
[ $# -gt 0 ] || set -- "$here"/*.[1-9]
status=0
for page in "$@"; do
	if ! mandoc -Tlint -W warning "$page"; then
		status=1
	fi
	style=$(mandoc -Tlint -W style "$page" 2>&1 |
	    grep -v -e 'referenced manual not found' -e 'mandoc.db' || true)
	if [ -n "$style" ]; then
		printf '%s\n' "$style"
		status=1
	fi
	# The page must also render.
	mandoc -Tutf8 "$page" >/dev/null || status=1
	echo "lint.sh: $(basename "$page"): $([ $status = 0 ] && echo clean || echo problems so far)"
done
exit $status
