package bundle

// Listener is one LISTEN socket in a sample's listeners.json.
type Listener struct {
	Proto  string `json:"proto"`  // "tcp"
	Family string `json:"family"` // "inet" | "inet6"
	// Local is ADDR:PORT as ss prints it: 0.0.0.0:143, [::]:143, [fe80::1%eth0]:22.
	Local string `json:"local"`
	Addr  string `json:"addr"`
	Port  int    `json:"port"`
	// RecvQ is the accept queue's current length (sk_ack_backlog).
	RecvQ uint32 `json:"recv_q"`
	// SendQ is the effective backlog (sk_max_ack_backlog, already clamped by
	// somaxconn at listen() time).
	SendQ uint32 `json:"send_q"`
	// SynRecv counts the half-open requests attributed to this listener: request
	// sockets with its port, and its address unless it is a wildcard listener.
	SynRecv int    `json:"syn_recv"`
	UID     uint32 `json:"uid"`
	Inode   uint32 `json:"inode"`
	// Cookie is the kernel's socket cookie, stable for the socket's lifetime:
	// it tells a re-created listener from the same one across samples.
	Cookie uint64 `json:"cookie"`
	// ReusePort is true when other listeners share this address and port, so
	// the SYN-RECV count is the group's, not this socket's alone.
	ReusePort bool   `json:"reuseport,omitempty"`
	PID       int    `json:"pid"`
	Comm      string `json:"comm"`
	// Drops is the socket's own drop counter (sk_drops, SK_MEMINFO_DROPS of
	// INET_DIAG_SKMEMINFO), cumulative since the socket was created. On a
	// listener tcp_listendrop() bumps it with every TcpExt.ListenDrops, so it
	// says which socket dropped. It is a 32-bit kernel counter and wraps.
	// nil means unknown: a kernel before 4.7, or a bundle written before the
	// field existed; never read nil as 0.
	Drops *uint32 `json:"drops,omitempty"`
}

// Socket is one row of sockets/tcp.jsonl: the fields of ss -tanoi. Numbers
// that are 0, here and in Info, are omitted from the row and read back as 0
// (rows written before they were omitted carry them; both read the same).
type Socket struct {
	Family string `json:"family"`
	State  string `json:"state"` // ss names: LISTEN, ESTAB, SYN-RECV, TIME-WAIT, ...
	Local  string `json:"local"`
	Remote string `json:"remote"`
	RecvQ  uint32 `json:"recv_q,omitempty"`
	SendQ  uint32 `json:"send_q,omitempty"`
	UID    uint32 `json:"uid,omitempty"`
	Inode  uint32 `json:"inode,omitempty"`
	Cookie uint64 `json:"cookie,omitempty"`
	// Timer is ss's timer name (on, keepalive, timewait, persist), with the
	// time left and the retransmit count, when a timer runs.
	Timer     string   `json:"timer,omitempty"`
	ExpiresMS uint32   `json:"expires_ms,omitempty"`
	Retrans   uint8    `json:"retrans,omitempty"`
	Info      *TCPInfo `json:"info,omitempty"`
}

// TCPInfo is the part of struct tcp_info that ss -i shows. Its zero fields
// are omitted from a row: an idle socket's info is mostly zeros.
type TCPInfo struct {
	State         uint8  `json:"state,omitempty"`
	CAState       uint8  `json:"ca_state,omitempty"`
	Retransmits   uint8  `json:"retransmits,omitempty"`
	Probes        uint8  `json:"probes,omitempty"`
	Backoff       uint8  `json:"backoff,omitempty"`
	Options       uint8  `json:"options,omitempty"`
	SndWscale     uint8  `json:"snd_wscale,omitempty"`
	RcvWscale     uint8  `json:"rcv_wscale,omitempty"`
	RTO           uint32 `json:"rto_us,omitempty"`
	ATO           uint32 `json:"ato_us,omitempty"`
	SndMSS        uint32 `json:"snd_mss,omitempty"`
	RcvMSS        uint32 `json:"rcv_mss,omitempty"`
	Unacked       uint32 `json:"unacked,omitempty"`
	Sacked        uint32 `json:"sacked,omitempty"`
	Lost          uint32 `json:"lost,omitempty"`
	Retrans       uint32 `json:"retrans,omitempty"`
	LastDataSent  uint32 `json:"last_data_sent_ms,omitempty"`
	LastDataRecv  uint32 `json:"last_data_recv_ms,omitempty"`
	LastAckRecv   uint32 `json:"last_ack_recv_ms,omitempty"`
	PMTU          uint32 `json:"pmtu,omitempty"`
	RcvSsthresh   uint32 `json:"rcv_ssthresh,omitempty"`
	RTT           uint32 `json:"rtt_us,omitempty"`
	RTTVar        uint32 `json:"rttvar_us,omitempty"`
	SndSsthresh   uint32 `json:"snd_ssthresh,omitempty"`
	SndCwnd       uint32 `json:"snd_cwnd,omitempty"`
	AdvMSS        uint32 `json:"advmss,omitempty"`
	Reordering    uint32 `json:"reordering,omitempty"`
	RcvRTT        uint32 `json:"rcv_rtt_us,omitempty"`
	RcvSpace      uint32 `json:"rcv_space,omitempty"`
	TotalRetrans  uint32 `json:"total_retrans,omitempty"`
	PacingRate    uint64 `json:"pacing_rate,omitempty"`
	BytesAcked    uint64 `json:"bytes_acked,omitempty"`
	BytesReceived uint64 `json:"bytes_received,omitempty"`
	SegsOut       uint32 `json:"segs_out,omitempty"`
	SegsIn        uint32 `json:"segs_in,omitempty"`
	MinRTT        uint32 `json:"min_rtt_us,omitempty"`
	DeliveryRate  uint64 `json:"delivery_rate,omitempty"`
	BusyTimeUS    uint64 `json:"busy_time_us,omitempty"`
	BytesSent     uint64 `json:"bytes_sent,omitempty"`
	BytesRetrans  uint64 `json:"bytes_retrans,omitempty"`
}

// SocketSummary is sockets/summary.json: counts over every TCP socket, never
// capped, so a reader can trust totals even when the table was.
type SocketSummary struct {
	Total   int            `json:"total"`
	ByState map[string]int `json:"by_state"`
	// ByLocalPort counts sockets by local port, then by state.
	ByLocalPort map[int]map[string]int `json:"by_local_port"`
	// ByRemoteAddr counts sockets by remote address (no port), then by state.
	// The unspecified address of LISTEN sockets is left out.
	ByRemoteAddr map[string]map[string]int `json:"by_remote_addr"`
}

// SampleTime is a sample's time file (SampleTimeFile): when it was taken, on both clocks.
type SampleTime struct {
	Index int `json:"index"`
	// MonotonicNS is CLOCK_MONOTONIC in nanoseconds: deltas between samples use it.
	MonotonicNS int64  `json:"monotonic_ns"`
	Wall        string `json:"wall"` // RFC 3339 with nanoseconds, UTC
}
