package tui

import "github.com/snapdiag/snapdiag/analyze"

// kernelDefault is a sysctl's default on kernel k, where it is fixed (not
// sized from memory or the hash tables at boot) and known: the values of
// Documentation/networking/ip-sysctl.rst and the kernel's initialisers.
func kernelDefault(name string, k analyze.KernelVersion) (string, bool) {
	switch name {
	case "net.core.somaxconn":
		// SOMAXCONN went from 128 to 4096 in 5.4 (include/linux/socket.h).
		if k.AtLeast(5, 4, 0) {
			return "4096", true
		}
		return "128", true
	case "net.ipv4.tcp_syncookies", "net.ipv4.tcp_timestamps", "net.ipv4.tcp_window_scaling",
		"net.ipv4.tcp_sack", "net.ipv4.tcp_dsack", "net.ipv4.tcp_slow_start_after_idle",
		"net.ipv4.tcp_moderate_rcvbuf", "net.ipv4.tcp_autocorking", "net.ipv4.tcp_fastopen":
		return "1", true
	case "net.ipv4.tcp_abort_on_overflow", "net.ipv4.tcp_tw_recycle", "net.ipv4.tcp_mtu_probing",
		"net.ipv4.tcp_no_metrics_save", "net.ipv4.tcp_rfc1337", "net.ipv4.tcp_orphan_retries",
		"net.ipv4.ip_forward", "net.core.busy_poll", "net.core.busy_read":
		return "0", true
	case "net.ipv4.tcp_synack_retries":
		return "5", true
	case "net.ipv4.tcp_syn_retries":
		return "6", true
	case "net.ipv4.tcp_syn_linear_timeouts":
		return "4", k.AtLeast(6, 5, 0)
	case "net.ipv4.tcp_fin_timeout":
		return "60", true
	case "net.ipv4.tcp_keepalive_time":
		return "7200", true
	case "net.ipv4.tcp_keepalive_intvl":
		return "75", true
	case "net.ipv4.tcp_keepalive_probes":
		return "9", true
	case "net.ipv4.tcp_retries1":
		return "3", true
	case "net.ipv4.tcp_retries2":
		return "15", true
	case "net.ipv4.tcp_ecn", "net.ipv4.tcp_frto":
		return "2", true
	case "net.ipv4.tcp_reordering", "net.ipv4.tcp_early_retrans":
		return "3", true
	case "net.ipv4.tcp_min_snd_mss", "net.ipv4.tcp_mtu_probe_floor":
		return "48", true
	case "net.ipv4.tcp_base_mss":
		return "1024", true
	case "net.ipv4.tcp_invalid_ratelimit":
		return "500", true
	case "net.ipv4.ip_local_port_range":
		return "32768 60999", true
	case "net.core.netdev_max_backlog":
		return "1000", true
	case "net.core.netdev_budget":
		return "300", true
	case "net.core.rmem_default", "net.core.wmem_default", "net.core.rmem_max", "net.core.wmem_max":
		return "212992", true
	case "net.netfilter.nf_conntrack_tcp_timeout_established":
		return "432000", true
	case "net.netfilter.nf_conntrack_tcp_timeout_time_wait":
		return "120", true
	}
	return "", false
}
