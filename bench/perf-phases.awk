# perf-phases.awk: split a `perf script -F ip,sym` dump of one `snapdiag capture` into
# the phases of a capture, in CPU milliseconds (pass -v hz=SAMPLING_FREQUENCY).
# Matching is by function name, so it is best effort: whatever matches nothing is
# "other". Kernel samples of the sock_diag dump often lose their Go frames, so they
# are counted together for the sockets and listeners collectors.
function flush_sample(   c) {
	if (stack == "") return
	c = "other (runtime, start-up, exit)"
	if (stack ~ /Writer\)\.Commit/) {
		if (stack ~ /fastEncoder\)\.Encode/ && leaf ~ /memmove/) c = "commit: zstd history-window shifting (memmove)"
		else if (stack ~ /zstd/) c = "commit: zstd compression"
		else if (stack ~ /do_fsync|\.Sync/) c = "commit: fsync"
		else c = "commit: tar, read staged files, rename"
	} else if (stack ~ /Sockets\)\.Collect/) {
		if (stack ~ /AppendRawSocket|rawSocket/) c = "sockets: encode JSON rows"
		else if (stack ~ /socketTable\)\.flush|memberFile\)\.Write/) c = "sockets: write rows to the staging file"
		else if (stack ~ /socketTable\)\.add|DecodeMsg|parseDatagram/) c = "sockets: decode and count"
		else c = "sockets: netlink receive, other"
	} else if (stack ~ /klauspost\/compress\/zstd/) {
		# Members streamed through a compressor while they are collected (4faaa76 on).
		c = (leaf ~ /memmove/ && stack ~ /fastEncoder\)\.Encode/) ? "bundle: zstd history-window shifting (memmove), beside the collectors" : "bundle: zstd compression, beside the collectors"
	} else if (stack ~ /readListeners|listenersWithTable/) {
		# Since the listener snapshot is shared (Host.Shared), its dump may run
		# under the processes collector as well as the listeners sampler.
		c = "listeners: LISTEN + SYN-RECV dump (shared with processes)"
	} else if (stack ~ /Listeners\)\.Sample/) {
		c = (stack ~ /findSocketOwners/) ? "listeners: owner lookup in /proc/*/fd" : "listeners: LISTEN + SYN-RECV dumps"
	} else if (stack ~ /Sysctls\)\.Collect/) c = "sysctls: walk and read /proc/sys"
	else if (stack ~ /gcBgMarkWorker|gcDrain|bgsweep|bgscavenge/) c = "Go GC"
	else if (stack ~ /\)\.Collect|\)\.Sample/) c = "other collectors and samplers"
	else if (stack ~ /tcp_diag|inet_diag|inet_sk_diag|tcp_get_info|netlink_dump|__nlmsg_put|__nla_|nla_put|netlink_sendskb/) c = "kernel: sock_diag dump walk + fill (sockets and listeners)"
	n[c]++
	total++
	stack = ""
	leaf = ""
}
/^[^ \t]/ { flush_sample(); next }
/^[ \t]+[0-9a-f]+ / { if (leaf == "") leaf = $2; stack = stack " " $2; next }
/^$/ { flush_sample() }
END {
	flush_sample()
	for (k in n) printf "%8.1f ms %5.1f%%  %s\n", n[k] / hz * 1000, 100 * n[k] / total, k | "sort -rn"
	close("sort -rn")
	printf "%8.1f ms 100.0%%  total CPU (both CPUs)\n", total / hz * 1000
}
