#!/bin/bash
# The guest side of tools/vm-test.sh: reads one request a line from the virtio-serial port
# vmtest ("ID BASE64-COMMAND"), runs the command with bash -o pipefail (at most 600 s) and answers with its
# output (stdout and stderr) and a line "@@END ID STATUS". "@@READY" says it is listening, at
# every start (after each boot). Installed in the test image only.
port=/dev/virtio-ports/vmtest
exec 3<>"$port"
echo "@@READY" >&3
while IFS= read -r line <&3; do
	id=${line%% *}
	cmd=$(printf '%s' "${line#* }" | base64 -d)
	out=$(timeout 600 bash -o pipefail -c "$cmd" 2>&1 </dev/null)
	rc=$?
	printf '%s\n@@END %s %s\n' "$out" "$id" "$rc" >&3
done
